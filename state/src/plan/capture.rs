//! Capture steps written with the trace or change they record, and the capture's bound kept
//! in the same transaction.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::error::{limit_to_i64, to_i64};
use crate::sql::{INSERT_CAPTURE_ROWS, TRIM_CAPTURE_THROUGH};
use crate::statement::{Param, Statement, multi_row};
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

/// The capture's sequence counter and its bound.
#[derive(Debug, Default)]
pub(crate) struct CaptureLog {
    /// The last sequence this host allocated.
    sequence: AtomicI64,
    /// How many steps the capture keeps at most; 0 for no bound.
    max_steps: AtomicI64,
}

impl CaptureLog {
    /// A log whose last allocated sequence is `last_sequence`, with no bound yet.
    pub(crate) fn new(last_sequence: i64) -> Self {
        Self { sequence: AtomicI64::new(last_sequence), max_steps: AtomicI64::new(0) }
    }

    /// Bounds the capture to its newest `max_steps` steps; 0 removes the bound.
    pub(crate) fn bound(&self, max_steps: usize) {
        self.max_steps.store(limit_to_i64(max_steps), Ordering::Relaxed);
    }

    /// Allocates the next capture sequence.
    fn next_sequence(&self) -> i64 {
        self.sequence.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// After `n_added` steps: the sequence through which steps are beyond the bound, and how
    /// many of them to delete now (twice the batch, so a backlog shrinks), or `None`.
    fn trim_window(&self, n_added: usize) -> Option<(i64, i64)> {
        let max_steps = self.max_steps.load(Ordering::Relaxed);
        if n_added == 0 || max_steps <= 0 {
            return None;
        }
        let through = self.sequence.load(Ordering::Relaxed).saturating_sub(max_steps);
        (through > 0).then_some((through, limit_to_i64(n_added.saturating_mul(2))))
    }
}

/// Inserts `captures` in order with new sequences, then deletes the oldest steps beyond the
/// bound, at most twice as many as were added, in the same transaction: the capture stays at
/// its bound under any write load (a backlog shrinks by one batch's worth per batch) without a
/// transaction and a sync of its own.
pub(super) fn capture_statements<'a>(
    captures: &[CaptureInsert<'a>],
    capture_log: &CaptureLog,
) -> Result<Vec<Statement<'a>>> {
    let mut columns = Vec::with_capacity(captures.len());
    for capture in captures {
        columns.push((
            capture,
            capture_log.next_sequence(),
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
    if let Some((through, limit)) = capture_log.trim_window(captures.len()) {
        statements.push(Statement::new(
            TRIM_CAPTURE_THROUGH,
            vec![Param::int(through), Param::int(limit)],
        ));
    }
    Ok(statements)
}
