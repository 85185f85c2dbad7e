//! The reuse fingerprint of a retrieve, and the hashes its trace names the filter and the query
//! by.
//!
//! The fingerprint covers every field of the reuse boundary (every scope field, the filter in
//! its canonical encoding, `top_k`, the content flag, the store, its plugin and the
//! certification suite) and the query's numbers, through `kyro_core`'s SHA-256 fingerprinter:
//! a client chooses every one of those values, so it must not be able to steer its request onto
//! another request's cached answer. (The cache also compares the entry's scope on every hit.)

use kyro_core::planner::{Fingerprint, Fingerprinter};

use crate::stores::RegisteredStore;
use crate::wire::request::{ScopeDto, ValidRetrieve};

/// What a retrieve's trace and cache key are derived from.
pub(crate) struct RequestHashes {
    /// The reuse-cache key.
    pub(crate) fingerprint: Fingerprint,
    /// A compact hash of the filter; 0 without one.
    pub(crate) filter_hash: u64,
    /// The filter's fingerprint, as 16 hex digits (`none` without one).
    pub(crate) filter_fingerprint: String,
    /// A hash of the query embedding, as a decimal number.
    pub(crate) query_hash: String,
}

/// Hashes a checked retrieve served by `store`.
pub(crate) fn hash_request(
    scope: &ScopeDto,
    valid: &ValidRetrieve,
    store: &RegisteredStore,
) -> RequestHashes {
    let filter =
        valid.filter.as_ref().map(|filter| Fingerprinter::default().filter(Some(filter)).finish());
    let query = Fingerprinter::default().floats(valid.embedding.as_slice()).finish();
    let auth_scope = scope.auth_scope.as_ref().map(|entries| entries.join("\u{1f}"));
    let mut key = Fingerprinter::default();
    key.field(&scope.tenant_id)
        .field(&scope.namespace)
        .optional(scope.app_id.as_deref())
        .optional(scope.locale.as_deref())
        .optional(auth_scope.as_deref())
        .optional(scope.entitlement_boundary.as_deref())
        .optional(scope.embedding_model_id.as_deref())
        .optional(scope.reranker_version.as_deref())
        .optional(scope.prompt_template_version.as_deref())
        .filter(valid.filter.as_ref())
        .number(u64::from(valid.top_k))
        .number(u64::from(valid.include_content))
        .field(&store.config.id)
        .optional(store.report.plugin.sha256.as_deref())
        .field(kyro_certification::SUITE_VERSION)
        .floats(valid.embedding.as_slice());
    RequestHashes {
        fingerprint: key.finish(),
        filter_hash: filter.map_or(0, |filter| filter.0),
        filter_fingerprint: filter.map_or_else(|| "none".to_owned(), |filter| filter.to_string()),
        query_hash: query.0.to_string(),
    }
}
