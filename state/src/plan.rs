//! Every write the store makes, planned without IO, whichever driver runs it.
//!
//! A write is one transaction in two steps: the queries it reads first (taking the locks it
//! needs and reading what its outcome depends on), then the statements it decides to write
//! from what those queries returned. [`Write::plan`] is a pure function of its inputs and
//! those rows, so both drivers (`pool` over sqlx, `direct` over rusqlite) produce the same
//! outcomes and the same rows; they differ only in how they execute [`Statement`]s.
//!
//! This module does not decide what a change means for the reuse cache: callers pass scope
//! keys and document facts.

mod capture;
mod change;
mod document;
mod evidence;
#[cfg(test)]
mod tests;

pub(crate) use capture::CaptureBound;
pub(crate) use change::ChangeBatch;
pub(crate) use document::order_from_columns;
pub(crate) use evidence::{FeedbackInsert, PRUNE_CHUNK_ROWS, PruneChunk, Seed, TraceBatch};

use crate::Result;
use crate::statement::{Query, Row, Statement};

/// One write transaction, planned without IO.
pub(crate) trait Write {
    /// What the caller gets once the transaction committed.
    type Output;

    /// What the write is doing, as a verb phrase for error messages (`"apply changes"`).
    fn operation(&self) -> &'static str;

    /// The queries to run first, in order, inside the transaction.
    ///
    /// # Errors
    ///
    /// An input that cannot be stored ([`crate::StateError::OutOfRange`]); then nothing runs.
    fn reads(&self) -> Result<Vec<Query<'_>>>;

    /// The statements to write and the output, decided from what [`Write::reads`] returned:
    /// one list of rows per query, in order.
    ///
    /// # Errors
    ///
    /// Inputs out of range, or stored values no Kyro build writes; then the transaction is
    /// rolled back and nothing of it was written.
    fn plan(&self, rows: Vec<Vec<Row>>) -> Result<Planned<'_, Self::Output>>;
}

/// What a write decided.
#[derive(Debug)]
pub(crate) struct Planned<'a, T> {
    /// To execute in order, after the reads.
    pub(crate) statements: Vec<Statement<'a>>,
    pub(crate) output: T,
}

/// The single value of a query that returns one row of one `BIGINT` column.
pub(crate) fn single_int(rows: Option<Vec<Row>>, field: &'static str) -> Result<i64> {
    let row = rows.and_then(|rows| rows.into_iter().next());
    let row = row.ok_or(crate::StateError::Corrupt { field, value: "no row".to_owned() })?;
    row.int(0)
}
