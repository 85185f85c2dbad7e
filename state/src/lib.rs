//! KyroDB's durable state store: the freshness ledger (the runtime generation, per-scope
//! generations, the change-event dedupe ledger and per-document facts), request traces,
//! feedback and the replay capture.
//!
//! One semantics on two backends: SQLite (the embedded default, a local file) and PostgreSQL
//! (hosts that share state) run the same migrations (`migrations/`) and the same planned
//! statements. Every write is planned by one pure function (`plan`): what a batch of changes
//! or traces decides and writes does not depend on the driver. The drivers only execute:
//! `pool` over sqlx (PostgreSQL, and SQLite's cold paths) and `direct` over rusqlite
//! (SQLite's serving paths and writes, without sqlx's thread hop per statement). Every input
//! is a bound parameter.
//!
//! The generation lives in a single counter row that every applied change increments inside
//! its own transaction. That row lock (PostgreSQL) or the database write lock (SQLite)
//! serializes appliers, so generations are dense, never reused, and commit in order, across
//! restarts and across hosts sharing one PostgreSQL database.
//!
//! This crate deliberately does not decide what a change means (which scopes it touches,
//! whether a reuse entry is stale): callers pass scope keys and document facts and read them
//! back. It keeps no cache either, so hosts sharing PostgreSQL always agree.

mod direct;
mod error;
mod model;
mod open;
mod plan;
mod pool;
mod read;
mod retention;
mod sql;
mod statement;
mod store;
#[cfg(feature = "test-suite")]
pub mod suite;
#[cfg(test)]
mod tests;

pub use error::{Result, StateError};
pub use model::{
    ApplyOutcome, CaptureRow, CaptureStatus, CapturedStep, ChangeInput, DocumentChange,
    DocumentKey, DocumentState, EventTenant, EvidenceCounts, FeedbackRow, FreshnessView,
    OutOfOrderDocument, Primer, ProcessedEvent, Pruned, ScopeChange, ScopeGeneration, SourceEvent,
    TraceRow,
};
pub use store::{StateBackend, StateStore};
