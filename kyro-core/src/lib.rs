//! KyroDB's domain types, shared by the connector SDK, the certification harness and the host.
//!
//! Every type here is validated when it is constructed, so a value that exists is a value that
//! satisfies the runtime contract's limits (`../shared/spec/runtime-contract.md` §3).
//! This crate deliberately does no IO: no clock, no environment, no files, no network, no async
//! runtime. Time, ids and randomness come in as arguments.
//!
//! Types derive `serde` because they cross the plugin boundary as versioned payloads; they are not
//! the HTTP wire format, which lives in `kyro-host`'s `api` module.

pub mod change;
pub mod diagnosis;
pub mod document;
pub mod error;
pub mod filter;
pub mod freshness;
pub mod ledger;
pub mod limits;
pub mod planner;
pub mod replay;
pub mod scope;
pub mod time;

#[cfg(test)]
mod tests;

pub use document::{
    Document, DocumentId, Embedding, Metadata, MutationAck, MutationOutcome, Revision, SearchHit,
    StoredDocument,
};
pub use error::{ConnectorError, ErrorKind, ValidationError};
pub use filter::{FilterExpr, FilterKey, FilterValue, RuntimeFilter};
pub use freshness::{FreshnessMode, OwnershipMode, SnapshotVersion, Watermark};
pub use scope::{Scope, validate_identifier};
