//! A batch of changes (change events, invalidations, verified mutation ACKs) in one
//! transaction: the one place that decides each change's outcome and what the ledger writes.
//!
//! Applying a batch has the outcomes applying its changes one by one would have: a replayed
//! event id (also of an earlier change in the same batch) returns the original generation and
//! changes nothing; every other change gets the next generation, so generations stay dense,
//! never reused and ordered as committed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kyro_core::planner::DocumentFacts;

use super::capture::{self, CaptureInsert, Sequences, capture_statements};
use super::document::{self, Documents};
use super::{Planned, Write, single_int};
use crate::error::{to_i64, to_u64};
use crate::sql::{
    INSERT_PROCESSED_EVENTS, LOCK_GENERATION, SET_GENERATION, UPSERT_SCOPES, UPSERT_SCOPES_SUFFIX,
    processed_events_lookup,
};
use crate::statement::{Column, Param, Query, Row, Statement, multi_row};
use crate::{
    ApplyOutcome, CaptureStatus, ChangeInput, DocumentKey, EventTenant, Result, SourceEvent,
};

/// Rows per multi-row statement and keys per lookup. Both backends cap bind parameters per
/// statement (SQLite 32766, PostgreSQL 65535); these stay far below and keep statements small
/// enough for the per-connection statement cache.
const EVENT_ROWS_PER_STATEMENT: usize = 200;
const SCOPE_ROWS_PER_STATEMENT: usize = 200;
const EVENTS_PER_LOOKUP: usize = 500;

/// A batch of changes to apply in one transaction.
pub(crate) struct ChangeBatch {
    changes: Vec<ChangeInput>,
    /// The capture's bound (0 for none).
    max_capture_steps: i64,
}

impl ChangeBatch {
    pub(crate) fn new(changes: Vec<ChangeInput>, max_capture_steps: i64) -> Self {
        Self { changes, max_capture_steps }
    }

    fn n_captures(&self) -> usize {
        self.changes.iter().filter(|change| change.capture.is_some()).count()
    }
}

/// What a batch's transaction read, under the generation lock, before it decides.
pub(super) struct BatchReads {
    /// The generation before the batch.
    pub(super) base: u64,
    /// The batch's events already processed: original generation and fingerprint.
    pub(super) known: HashMap<SourceEvent, (u64, String)>,
    /// The stored facts of the batch's documents.
    pub(super) stored: HashMap<DocumentKey, DocumentFacts>,
    /// The capture sequences allocated for the batch's capture steps.
    pub(super) sequences: Sequences,
}

impl Write for ChangeBatch {
    type Output = Vec<ApplyOutcome>;

    fn operation(&self) -> &'static str {
        "apply changes"
    }

    fn reads(&self) -> Result<Vec<Query<'_>>> {
        // Range checks first: nothing runs when any change is out of range.
        document::check_ranges(&self.changes)?;
        // The lock first, so the dedupe lookups see every event committed before this batch.
        let mut reads = vec![Statement::new(LOCK_GENERATION, Vec::new()).returning(&[Column::Int])];
        let events = source_events(&self.changes);
        for chunk in events.chunks(EVENTS_PER_LOOKUP) {
            let mut params = Vec::with_capacity(chunk.len() * 2);
            for event in chunk {
                params.extend([Param::owned_text(event.tenant.to_key()), Param::text(&event.id)]);
            }
            let statement = Statement { sql: processed_events_lookup(chunk.len()).into(), params };
            reads.push(statement.returning(&[
                Column::Text,
                Column::Text,
                Column::Int,
                Column::Text,
            ]));
        }
        // The stored facts of the batch's documents, under the same lock.
        reads.extend(document::lookups(&self.changes));
        // Capture sequences last: the counter's lock is always taken after the generation's.
        reads.extend(capture::allocate(self.n_captures()));
        Ok(reads)
    }

    fn plan(&self, rows: Vec<Vec<Row>>) -> Result<Planned<'_, Self::Output>> {
        let mut rows = rows.into_iter();
        let base = to_u64("generation", single_int(rows.next(), "generation")?)?;
        let n_event_lookups = source_events(&self.changes).len().div_ceil(EVENTS_PER_LOOKUP);
        let mut known = HashMap::new();
        for mut row in rows.by_ref().take(n_event_lookups).flatten() {
            let event = SourceEvent::new(EventTenant::from_key(&row.text(0)?)?, row.text(1)?);
            known.insert(event, (to_u64("generation", row.int(2)?)?, row.text(3)?));
        }
        let stored = document::decode_stored(
            rows.by_ref().take(document::n_lookups(&self.changes)).flatten(),
        )?;
        let sequences = Sequences::allocated(rows.next(), self.n_captures())?;
        let read = BatchReads { base, known, stored, sequences };
        plan_changes(&self.changes, read, self.max_capture_steps)
    }
}

/// Decides a batch from what its transaction read: each change's outcome, and the
/// statements that record the applied ones (the generation, new events, each scope once with
/// its latest change, each document once with its facts moved forward, the documents whose
/// facts arrived out of order) and every change's capture step.
pub(super) fn plan_changes(
    changes: &[ChangeInput],
    read: BatchReads,
    max_capture_steps: i64,
) -> Result<Planned<'_, Vec<ApplyOutcome>>> {
    let base = read.base;
    let decided = Decided::new(changes, base, read.known, read.stored)?;
    let mut statements = Vec::new();
    if decided.generation > base {
        let value = to_i64("generation", decided.generation)?;
        statements.push(Statement::new(SET_GENERATION, vec![Param::int(value)]));
    }
    statements.extend(decided.ledger_statements());
    statements.extend(decided.documents.statements()?);
    statements.extend(capture_statements(&decided.captures, read.sequences, max_capture_steps)?);
    Ok(Planned { statements, output: decided.outcomes })
}

/// What a batch decided, before it becomes statements.
struct Decided<'a> {
    outcomes: Vec<ApplyOutcome>,
    /// The generation after the batch.
    generation: u64,
    /// `(tenant_key, source_event_id, generation, fingerprint, processed_at_ms)` of the
    /// applied events.
    new_events: Vec<(String, &'a str, i64, &'a str, i64)>,
    /// `scope_key` to `(generation, acknowledged_at_ms, change_trigger)` of its latest change,
    /// in key order, so concurrent appliers touch rows in the same order.
    scopes: BTreeMap<&'a str, (i64, i64, &'a str)>,
    /// The documents' facts, moved forward change by change.
    documents: Documents<'a>,
    captures: Vec<CaptureInsert<'a>>,
}

impl<'a> Decided<'a> {
    /// Walks the batch in order, as applying the changes one by one would.
    fn new(
        changes: &'a [ChangeInput],
        base: u64,
        mut known: HashMap<SourceEvent, (u64, String)>,
        stored: HashMap<DocumentKey, DocumentFacts>,
    ) -> Result<Self> {
        let mut decided = Self {
            outcomes: Vec::with_capacity(changes.len()),
            generation: base,
            new_events: Vec::new(),
            scopes: BTreeMap::new(),
            documents: Documents::new(stored),
            captures: Vec::new(),
        };
        for change in changes {
            let outcome = match change.source_event.as_ref().and_then(|event| known.get(event)) {
                Some((original, fingerprint)) if *fingerprint == change.fingerprint => {
                    ApplyOutcome::Replayed { generation: *original }
                }
                Some((original, _)) => ApplyOutcome::Conflict { generation: *original },
                None => {
                    decided.generation += 1;
                    ApplyOutcome::Applied { generation: decided.generation }
                }
            };
            let mut documents_out_of_order = 0;
            if let ApplyOutcome::Applied { generation } = outcome {
                if let Some(event) = &change.source_event {
                    known.insert(event.clone(), (generation, change.fingerprint.clone()));
                }
                decided.record(change, to_i64("generation", generation)?);
                documents_out_of_order = decided.documents.apply(change, generation);
            }
            if let Some(capture) = &change.capture {
                // A change applied at `g` saw `g - 1`; a replay saw the batch's generation so
                // far.
                let pre_generation = match outcome {
                    ApplyOutcome::Applied { generation } => generation - 1,
                    ApplyOutcome::Replayed { .. } | ApplyOutcome::Conflict { .. } => {
                        decided.generation
                    }
                };
                decided.captures.push(CaptureInsert {
                    row: capture,
                    pre_generation,
                    generation: outcome.generation(),
                    status: CaptureStatus::from(outcome),
                    documents_out_of_order,
                });
            }
            decided.outcomes.push(outcome);
        }
        Ok(decided)
    }

    /// Records what an applied change writes besides its documents: its event and scopes.
    fn record(&mut self, change: &'a ChangeInput, generation: i64) {
        if let Some(event) = &change.source_event {
            let tenant_key = event.tenant.to_key();
            self.new_events.push((
                tenant_key,
                &event.id,
                generation,
                &change.fingerprint,
                change.now_ms,
            ));
        }
        for scope_change in &change.scope_keys {
            self.scopes
                .insert(&scope_change.key, (generation, change.now_ms, &scope_change.trigger));
        }
    }

    /// The multi-row statements of the new events and scopes.
    fn ledger_statements(&self) -> Vec<Statement<'a>> {
        let mut statements = multi_row(
            &self.new_events,
            EVENT_ROWS_PER_STATEMENT,
            (INSERT_PROCESSED_EVENTS, 5, ""),
            |(tenant_key, id, generation, fingerprint, now_ms), params| {
                let (generation, now_ms) = (*generation, *now_ms);
                params.extend([
                    Param::owned_text(tenant_key.clone()),
                    Param::text(id),
                    Param::int(generation),
                    Param::text(fingerprint),
                    Param::int(now_ms),
                ]);
            },
        );
        let scopes: Vec<_> = self.scopes.iter().map(|(key, row)| (*key, *row)).collect();
        statements.extend(multi_row(
            &scopes,
            SCOPE_ROWS_PER_STATEMENT,
            (UPSERT_SCOPES, 4, UPSERT_SCOPES_SUFFIX),
            |&(key, (generation, now_ms, trigger)), params| {
                params.extend([
                    Param::text(key),
                    Param::int(generation),
                    Param::int(now_ms),
                    Param::text(trigger),
                ]);
            },
        ));
        statements
    }
}

/// The distinct source events of a batch, in order.
fn source_events(changes: &[ChangeInput]) -> Vec<&SourceEvent> {
    let mut seen = BTreeSet::new();
    let mut events = Vec::new();
    for event in changes.iter().filter_map(|change| change.source_event.as_ref()) {
        if seen.insert(event) {
            events.push(event);
        }
    }
    events
}
