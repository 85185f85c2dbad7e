//! The document model in Qdrant: deterministic point ids, and the payload a document is stored
//! as and read back from.
//!
//! A point's id is a UUID made from the SHA-256 of a length-prefixed encoding of (tenant,
//! namespace, document id), so two scopes' documents never share a point and can never overwrite
//! each other. The payload repeats tenant, namespace and document id as fields, because the
//! scope is enforced by payload `must` conditions in every query, and every point read back is
//! checked against the scope it was asked for.
//!
//! Payload layout (field names configurable):
//!
//! ```json
//! { "tenant_id": "acme", "namespace": "support", "doc_id": "doc-1",
//!   "content": "...", "revision": "r3",
//!   "metadata": { "lang": "en", "year": "2024" },
//!   "metadata_numeric": { "year": 2024.0 } }
//! ```
//!
//! Metadata values are strings, kept as given under `metadata`; a value whose trimmed text reads
//! as a finite number is mirrored under `metadata_numeric` so `range` filters can compare it.
//! This module does no IO.

use std::collections::BTreeMap;

use kyro_connector_sdk::{
    ConnectorError, Document, DocumentId, Metadata, Revision, Scope, StoredDocument,
};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::config::PayloadFields;

/// A point id derived from a document's scope and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PointKey([u8; 16]);

impl PointKey {
    /// The point id of document `id` in `scope`: the first 16 bytes of
    /// `SHA-256(len(tenant) tenant len(namespace) namespace len(id) id)`, lengths as 8-byte
    /// big-endian integers, with the UUID version 8 and variant bits set.
    pub fn derive(scope: &Scope, id: &DocumentId) -> Self {
        let mut hasher = Sha256::new();
        for part in [scope.tenant_id(), scope.namespace(), id.as_str()] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        let digest = hasher.finalize();
        let mut bytes = [0_u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        // RFC 9562 version 8 (custom) and the RFC variant, so the id is a well-formed UUID.
        bytes[6] = (bytes[6] & 0x0f) | 0x80;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Self(bytes)
    }

    /// The 16 bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The hyphenated lowercase UUID form, as Qdrant's gRPC API takes it.
    pub fn to_uuid_string(self) -> String {
        let hex: String = self.0.iter().map(|byte| format!("{byte:02x}")).collect();
        format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
    }
}

/// The payload a document is stored as.
pub(crate) fn to_payload(
    scope: &Scope,
    document: &Document,
    fields: &PayloadFields,
) -> Map<String, Value> {
    let mut payload = Map::new();
    payload.insert(fields.tenant.clone(), Value::from(scope.tenant_id()));
    payload.insert(fields.namespace.clone(), Value::from(scope.namespace()));
    payload.insert(fields.id.clone(), Value::from(document.id().as_str()));
    if let Some(content) = document.content() {
        payload.insert(fields.content.clone(), Value::from(content));
    }
    if let Some(revision) = document.revision() {
        payload.insert(fields.revision.clone(), Value::from(revision.as_str()));
    }
    let mut metadata = Map::new();
    let mut numeric = Map::new();
    for (key, value) in document.metadata().as_map() {
        metadata.insert(key.clone(), Value::from(value.as_str()));
        if let Some(number) = numeric_value(value) {
            numeric.insert(key.clone(), number);
        }
    }
    payload.insert(fields.metadata.clone(), Value::Object(metadata));
    payload.insert(fields.metadata_numeric.clone(), Value::Object(numeric));
    payload
}

/// The number a metadata value reads as, exactly as the reference `matches()` reads it for
/// `range`: the trimmed text parsed as an `f64`, finite.
pub(crate) fn numeric_value(text: &str) -> Option<Value> {
    let number = text.trim().parse::<f64>().ok().filter(|number| number.is_finite())?;
    serde_json::Number::from_f64(number).map(Value::Number)
}

/// Reads a stored point back as a document of `scope`.
///
/// # Errors
///
/// `Internal` when the point's payload names another scope (the store's filter failed, which must
/// never reach the host) or is not a document this connector wrote.
pub(crate) fn from_payload(
    scope: &Scope,
    payload: &Map<String, Value>,
    fields: &PayloadFields,
    include_content: bool,
) -> Result<StoredDocument, ConnectorError> {
    let tenant = payload.get(&fields.tenant).and_then(Value::as_str);
    let namespace = payload.get(&fields.namespace).and_then(Value::as_str);
    if tenant != Some(scope.tenant_id()) || namespace != Some(scope.namespace()) {
        return Err(ConnectorError::internal(
            "the store returned a point outside the requested scope; it was withheld",
        ));
    }
    let id = payload
        .get(&fields.id)
        .and_then(Value::as_str)
        .ok_or_else(|| ConnectorError::internal("a stored point has no document id field"))
        .and_then(|id| {
            DocumentId::new(id).map_err(|_| {
                ConnectorError::internal("a stored point has a document id outside the contract")
            })
        })?;
    let content = if include_content {
        payload.get(&fields.content).and_then(Value::as_str).map(str::to_owned)
    } else {
        None
    };
    let revision = payload
        .get(&fields.revision)
        .and_then(Value::as_str)
        .map(Revision::new)
        .transpose()
        .map_err(|_| {
            ConnectorError::internal(format!("document {id} has a revision outside the contract"))
        })?;
    let mut entries = BTreeMap::new();
    if let Some(Value::Object(metadata)) = payload.get(&fields.metadata) {
        for (key, value) in metadata {
            // Only string values are metadata; anything else was not written by KyroDB.
            if let Value::String(text) = value {
                entries.insert(key.clone(), text.clone());
            }
        }
    }
    let metadata = Metadata::new(entries).map_err(|_| {
        ConnectorError::internal(format!("document {id} has metadata outside the contract"))
    })?;
    Ok(StoredDocument { scope: scope.clone(), id, content, metadata, revision, watermark: None })
}
