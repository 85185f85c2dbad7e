//! The evidence writes (trace batches with their capture steps, feedback, retention chunks)
//! and seeding a fresh ledger from a primer.

use std::collections::HashSet;

use super::capture::{self, CaptureInsert, Sequences, capture_statements};
use super::{Planned, Write, single_int};
use crate::error::{limit_to_i64, to_i64, to_u64};
use crate::sql::{
    INSERT_FEEDBACK, INSERT_PROCESSED_EVENTS, INSERT_TRACES, INSERT_TRACES_SUFFIX,
    SELECT_GENERATION, SET_GENERATION, UPSERT_SCOPES,
};
use crate::statement::{Column, Param, Query, Row, Statement, multi_row};
use crate::{FeedbackRow, Primer, Result, StateError, TraceRow};

const TRACE_ROWS_PER_STATEMENT: usize = 200;
const SEED_ROWS_PER_STATEMENT: usize = 200;
/// A primer lists each event once; should one come twice, the first is kept.
const SEED_EVENTS_SUFFIX: &str = " ON CONFLICT (tenant_key, source_event_id) DO NOTHING";
/// Rows a retention chunk deletes at most.
pub(crate) const PRUNE_CHUNK_ROWS: usize = 100;

/// Traces to store in one transaction, each with its capture step.
pub(crate) struct TraceBatch {
    traces: Vec<TraceRow>,
    /// The capture's bound (0 for none).
    max_capture_steps: i64,
}

impl TraceBatch {
    pub(crate) fn new(traces: Vec<TraceRow>, max_capture_steps: i64) -> Self {
        Self { traces, max_capture_steps }
    }

    fn n_captures(&self) -> usize {
        self.traces.iter().filter(|trace| trace.capture.is_some()).count()
    }
}

impl Write for TraceBatch {
    type Output = Vec<Result<()>>;

    fn operation(&self) -> &'static str {
        "store traces"
    }

    /// Multi-row inserts whose `RETURNING` names the rows that were new, so a duplicate id
    /// fails only its own trace.
    fn reads(&self) -> Result<Vec<Query<'_>>> {
        let inserts = multi_row(
            &self.traces,
            TRACE_ROWS_PER_STATEMENT,
            (INSERT_TRACES, 4, INSERT_TRACES_SUFFIX),
            |trace, params| {
                params.extend([
                    Param::text(&trace.trace_id),
                    Param::text(&trace.tenant_id),
                    Param::int(trace.created_at_ms),
                    Param::text(&trace.body),
                ]);
            },
        );
        let mut reads: Vec<Query<'_>> =
            inserts.into_iter().map(|insert| insert.returning(&[Column::Text])).collect();
        // A sequence for every capture step: a duplicate trace's stays unused, a gap.
        reads.extend(capture::allocate(self.n_captures()));
        Ok(reads)
    }

    /// Each trace's outcome, and the capture steps of those stored: only the first of several
    /// traces with one new id was stored.
    fn plan(&self, rows: Vec<Vec<Row>>) -> Result<Planned<'_, Self::Output>> {
        let n_captures = self.n_captures();
        let mut rows = rows.into_iter();
        let n_inserts = rows.len() - usize::from(n_captures > 0);
        let mut inserted = HashSet::with_capacity(self.traces.len());
        for mut row in rows.by_ref().take(n_inserts).flatten() {
            inserted.insert(row.text(0)?);
        }
        let sequences = Sequences::allocated(rows.next(), n_captures)?;
        let mut outcomes = Vec::with_capacity(self.traces.len());
        let mut captures = Vec::with_capacity(self.traces.len());
        for trace in &self.traces {
            if inserted.remove(&trace.trace_id) {
                captures.extend(trace.capture.as_ref().map(CaptureInsert::as_written));
                outcomes.push(Ok(()));
            } else {
                outcomes.push(Err(StateError::DuplicateTrace { trace_id: trace.trace_id.clone() }));
            }
        }
        let statements = capture_statements(&captures, sequences, self.max_capture_steps)?;
        Ok(Planned { statements, output: outcomes })
    }
}

/// One feedback entry.
pub(crate) struct FeedbackInsert {
    feedback: FeedbackRow,
    feedback_id: String,
}

impl FeedbackInsert {
    pub(crate) fn new(feedback: FeedbackRow) -> Self {
        Self { feedback, feedback_id: uuid::Uuid::new_v4().simple().to_string() }
    }
}

impl Write for FeedbackInsert {
    type Output = ();

    fn operation(&self) -> &'static str {
        "store feedback"
    }

    fn reads(&self) -> Result<Vec<Query<'_>>> {
        Ok(Vec::new())
    }

    fn plan(&self, _rows: Vec<Vec<Row>>) -> Result<Planned<'_, ()>> {
        let feedback = &self.feedback;
        let params = vec![
            Param::text(&self.feedback_id),
            Param::text(&feedback.trace_id),
            Param::optional_text(feedback.tenant_id.as_deref()),
            Param::text(&feedback.signal),
            Param::text(&feedback.item_ids),
            Param::optional_text(feedback.comment.as_deref()),
            Param::int(feedback.received_at_ms),
            Param::int(i64::from(feedback.trace_known)),
        ];
        Ok(Planned { statements: vec![Statement::new(INSERT_FEEDBACK, params)], output: () })
    }
}

/// One retention chunk: a `DELETE` of at most [`PRUNE_CHUNK_ROWS`] rows older than `cutoff`
/// whose `RETURNING` counts them.
pub(crate) struct PruneChunk {
    pub(crate) sql: &'static str,
    pub(crate) cutoff: i64,
}

impl Write for PruneChunk {
    type Output = u64;

    fn operation(&self) -> &'static str {
        "prune evidence"
    }

    fn reads(&self) -> Result<Vec<Query<'_>>> {
        let params = vec![Param::int(self.cutoff), Param::int(limit_to_i64(PRUNE_CHUNK_ROWS))];
        Ok(vec![Statement::new(self.sql, params).returning(&[Column::Int])])
    }

    fn plan(&self, rows: Vec<Vec<Row>>) -> Result<Planned<'_, u64>> {
        let n_deleted = rows.iter().map(Vec::len).sum::<usize>();
        Ok(Planned { statements: Vec::new(), output: n_deleted as u64 })
    }
}

/// A fresh store's ledger, seeded from a primer.
pub(crate) struct Seed {
    pub(crate) primer: Primer,
}

impl Write for Seed {
    type Output = ();

    fn operation(&self) -> &'static str {
        "seed from a primer"
    }

    fn reads(&self) -> Result<Vec<Query<'_>>> {
        Ok(vec![Statement::new(SELECT_GENERATION, Vec::new()).returning(&[Column::Int])])
    }

    fn plan(&self, rows: Vec<Vec<Row>>) -> Result<Planned<'_, ()>> {
        let current = single_int(rows.into_iter().next(), "generation")?;
        if current != 0 {
            return Err(StateError::NotFresh { generation: to_u64("generation", current)? });
        }
        let primer = &self.primer;
        let generation = to_i64("generation", primer.current_generation)?;
        let mut statements = vec![Statement::new(SET_GENERATION, vec![Param::int(generation)])];
        let mut scopes = Vec::with_capacity(primer.scope_generations.len());
        for scope in &primer.scope_generations {
            scopes.push((scope, to_i64("generation", scope.generation)?));
        }
        statements.extend(multi_row(
            &scopes,
            SEED_ROWS_PER_STATEMENT,
            (UPSERT_SCOPES, 4, ""),
            |&(scope, generation), params| {
                params.extend([
                    Param::text(&scope.key),
                    Param::int(generation),
                    Param::int(scope.acknowledged_at_ms),
                    Param::text(&scope.trigger),
                ]);
            },
        ));
        let mut events = Vec::with_capacity(primer.processed_events.len());
        for event in &primer.processed_events {
            events.push((event, event.tenant.to_key(), to_i64("generation", event.generation)?));
        }
        statements.extend(multi_row(
            &events,
            SEED_ROWS_PER_STATEMENT,
            (INSERT_PROCESSED_EVENTS, 5, SEED_EVENTS_SUFFIX),
            |(event, tenant_key, generation), params| {
                let generation = *generation;
                params.extend([
                    Param::owned_text(tenant_key.clone()),
                    Param::text(&event.source_event_id),
                    Param::int(generation),
                    Param::text(&event.fingerprint),
                    Param::int(0),
                ]);
            },
        ));
        Ok(Planned { statements, output: () })
    }
}
