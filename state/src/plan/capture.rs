//! Capture steps written with the trace or change they record, and the capture's bound kept
//! in the same transaction.

use std::sync::atomic::{AtomicI64, Ordering};

use super::single_int;
use crate::error::{limit_to_i64, to_i64};
use crate::sql::{ADVANCE_CAPTURE_COUNTER, INSERT_CAPTURE_ROWS, TRIM_CAPTURE_THROUGH};
use crate::statement::{Column, Param, Query, Row, Statement, multi_row};
use crate::{CaptureRow, CaptureStatus, Result};

const CAPTURE_ROWS_PER_STATEMENT: usize = 100;

/// One capture step to insert: the step, and what it answered.
pub(super) struct CaptureInsert<'a> {
    pub(super) row: &'a CaptureRow,
    pub(super) pre_generation: u64,
    pub(super) generation: u64,
    pub(super) status: CaptureStatus,
    /// How many of a change's documents arrived out of order.
    pub(super) documents_out_of_order: u64,
}

impl<'a> CaptureInsert<'a> {
    /// A step that answered what its row says (a retrieve's).
    pub(super) fn as_written(row: &'a CaptureRow) -> Self {
        Self {
            row,
            pre_generation: row.pre_generation,
            generation: row.generation,
            status: row.status,
            documents_out_of_order: 0,
        }
    }
}

/// The capture's bound: how many steps it keeps at most, 0 for no bound.
#[derive(Debug, Default)]
pub(crate) struct CaptureBound(AtomicI64);

impl CaptureBound {
    /// Bounds the capture to its newest `max_steps` steps; 0 removes the bound.
    pub(crate) fn set(&self, max_steps: usize) {
        self.0.store(limit_to_i64(max_steps), Ordering::Relaxed);
    }

    pub(crate) fn max_steps(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The query that allocates `n_steps` sequences from the database's counter, or `None` when a
/// write adds no capture step (and takes no lock for it).
pub(super) fn allocate(n_steps: usize) -> Option<Query<'static>> {
    (n_steps > 0).then(|| {
        Statement::new(ADVANCE_CAPTURE_COUNTER, vec![Param::int(limit_to_i64(n_steps))])
            .returning(&[Column::Int])
    })
}

/// The sequences a write allocated with [`allocate`], from the counter's new value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sequences {
    /// The first allocated sequence.
    pub(super) first: i64,
    /// The last allocated sequence: the capture's newest once the write commits.
    pub(super) last: i64,
}

impl Sequences {
    /// The `n_steps` sequences ending at the counter's new value, read from the rows of
    /// [`allocate`]'s query (none when nothing was allocated).
    pub(super) fn allocated(rows: Option<Vec<Row>>, n_steps: usize) -> Result<Self> {
        if n_steps == 0 {
            return Ok(Self { first: 1, last: 0 });
        }
        let last = single_int(rows, "capture counter")?;
        Ok(Self { first: last - limit_to_i64(n_steps) + 1, last })
    }
}

/// Inserts `captures` in order with the allocated sequences, then deletes the oldest steps
/// beyond the bound (`max_steps`, 0 for none), at most twice as many as were added, in the
/// same transaction: the capture stays at its bound under any write load (a backlog shrinks by
/// one batch's worth per batch) without a transaction and a sync of its own.
pub(super) fn capture_statements<'a>(
    captures: &[CaptureInsert<'a>],
    sequences: Sequences,
    max_steps: i64,
) -> Result<Vec<Statement<'a>>> {
    let mut columns = Vec::with_capacity(captures.len());
    for (capture, sequence) in captures.iter().zip(sequences.first..) {
        debug_assert!(sequence <= sequences.last, "more steps than allocated sequences");
        columns.push((
            capture,
            sequence,
            to_i64("pre_generation", capture.pre_generation)?,
            to_i64("generation", capture.generation)?,
            to_i64("documents_out_of_order", capture.documents_out_of_order)?,
        ));
    }
    let mut statements = multi_row(
        &columns,
        CAPTURE_ROWS_PER_STATEMENT,
        (INSERT_CAPTURE_ROWS, 11, ""),
        |&(capture, sequence, pre_generation, generation, documents_out_of_order), params| {
            let row = capture.row;
            params.extend([
                Param::owned_text(uuid::Uuid::new_v4().simple().to_string()),
                Param::int(sequence),
                Param::int(row.captured_at_ms),
                Param::optional_text(row.tenant_id.as_deref()),
                Param::text(&row.step_type),
                Param::int(pre_generation),
                Param::int(generation),
                Param::text(capture.status.as_str()),
                Param::text(&row.request),
                Param::text(&row.body),
                Param::int(documents_out_of_order),
            ]);
        },
    );
    let through = sequences.last.saturating_sub(max_steps);
    if !captures.is_empty() && max_steps > 0 && through > 0 {
        let limit = limit_to_i64(captures.len().saturating_mul(2));
        statements.push(Statement::new(
            TRIM_CAPTURE_THROUGH,
            vec![Param::int(through), Param::int(limit)],
        ));
    }
    Ok(statements)
}
