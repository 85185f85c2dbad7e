//! The numeric limits of the runtime contract, in one place.
//!
//! Every constructor in this crate checks against these; the host checks the same constants on
//! the wire, so a request that passes the host never fails core validation for a limit.

/// Largest accepted JSON request body, in bytes.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Largest embedding dimension.
pub const MAX_EMBEDDING_DIMENSION: usize = 16_384;
/// Largest `top_k`.
pub const MAX_TOP_K: u32 = 1000;
/// `top_k` when a request does not name one.
pub const DEFAULT_TOP_K: u32 = 6;
/// Longest scope field, `source_event_id` or `revision`, in bytes.
pub const MAX_SCOPE_FIELD_BYTES: usize = 256;
/// Most entries in a scope's `auth_scope`.
pub const MAX_AUTH_SCOPE_ENTRIES: usize = 32;
/// Longest document id, trace id or item id, in bytes.
pub const MAX_ID_BYTES: usize = 1024;
/// Largest document content, in bytes.
pub const MAX_CONTENT_BYTES: usize = 1024 * 1024;
/// Most metadata entries on one document.
pub const MAX_METADATA_ENTRIES: usize = 256;
/// Longest metadata or filter key, in bytes.
pub const MAX_KEY_BYTES: usize = 128;
/// Longest metadata value or filter value, in bytes.
pub const MAX_VALUE_BYTES: usize = 4096;
/// Deepest filter tree; the root is at depth 1.
pub const MAX_FILTER_DEPTH: usize = 16;
/// Most nodes in one filter tree.
pub const MAX_FILTER_NODES: usize = 256;
/// Most values in one `in` filter.
pub const MAX_IN_VALUES: usize = 256;
