//! Document facts in a change batch: the stored facts are read under the batch's lock, each
//! applied change's facts are merged into them in order by `kyro_core::ledger::merge` (so they
//! only move forward), each document is written once, and every document whose facts arrived
//! out of order is recorded.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kyro_core::ledger::{EventOrder, Evidence, merge};
use kyro_core::planner::DocumentFacts;

use crate::error::{to_i64, to_u64};
use crate::sql::{INSERT_OUT_OF_ORDER, UPSERT_DOCUMENTS, UPSERT_DOCUMENTS_SUFFIX, document_lookup};
use crate::statement::{Column, Param, Query, Row, Statement, multi_row};
use crate::{ChangeInput, DocumentChange, DocumentKey, Result, StateError};

const DOCUMENTS_PER_LOOKUP: usize = 200;
const DOCUMENT_ROWS_PER_STATEMENT: usize = 100;
const OUT_OF_ORDER_ROWS_PER_STATEMENT: usize = 100;
const STORED_COLUMNS: &[Column] = &[
    Column::Text,
    Column::Text,
    Column::Text,
    Column::Int,
    Column::NullableText,
    Column::NullableInt,
    Column::Int,
    Column::NullableInt,
];

/// Checks that every document fact fits its column, before anything runs.
pub(super) fn check_ranges(changes: &[ChangeInput]) -> Result<()> {
    for document in changes.iter().flat_map(|change| &change.documents) {
        if let Some(watermark) = document.watermark {
            to_i64("watermark", watermark)?;
        }
    }
    Ok(())
}

/// The lookups of the stored facts of every document the batch names.
pub(super) fn lookups(changes: &[ChangeInput]) -> Vec<Query<'_>> {
    let mut seen = BTreeSet::new();
    let keys: Vec<&DocumentKey> = changes
        .iter()
        .flat_map(|change| &change.documents)
        .map(|document| &document.key)
        .filter(|key| seen.insert(*key))
        .collect();
    let mut queries = Vec::with_capacity(keys.len().div_ceil(DOCUMENTS_PER_LOOKUP));
    for chunk in keys.chunks(DOCUMENTS_PER_LOOKUP) {
        let mut params = Vec::with_capacity(chunk.len() * 3);
        for key in chunk {
            params.extend([
                Param::text(&key.tenant_id),
                Param::text(&key.namespace),
                Param::text(&key.doc_id),
            ]);
        }
        let statement = Statement { sql: document_lookup(chunk.len()).into(), params };
        queries.push(statement.returning(STORED_COLUMNS));
    }
    queries
}

/// How many lookups [`lookups`] plans for these changes.
pub(super) fn n_lookups(changes: &[ChangeInput]) -> usize {
    let keys: BTreeSet<&DocumentKey> =
        changes.iter().flat_map(|change| &change.documents).map(|document| &document.key).collect();
    keys.len().div_ceil(DOCUMENTS_PER_LOOKUP)
}

/// The stored facts from the rows of [`lookups`].
pub(super) fn decode_stored(
    rows: impl IntoIterator<Item = Row>,
) -> Result<HashMap<DocumentKey, DocumentFacts>> {
    let mut stored = HashMap::new();
    for mut row in rows {
        let key =
            DocumentKey { tenant_id: row.text(0)?, namespace: row.text(1)?, doc_id: row.text(2)? };
        let facts = DocumentFacts {
            generation: to_u64("generation", row.int(3)?)?,
            revision: row.optional_text(4)?,
            watermark: row.optional_int(5)?.map(|value| to_u64("watermark", value)).transpose()?,
            tombstone: row.int(6)? != 0,
            event_timestamp_ms: row.optional_int(7)?,
        };
        stored.insert(key, facts);
    }
    Ok(stored)
}

/// The document facts a batch moves forward.
pub(super) struct Documents<'a> {
    stored: HashMap<DocumentKey, DocumentFacts>,
    /// Each touched document's facts after the changes so far, in key order.
    merged: BTreeMap<&'a DocumentKey, DocumentFacts>,
    /// The documents whose facts arrived out of order, by generation and key (two entries for
    /// one document in one change are recorded once).
    out_of_order: BTreeMap<(u64, &'a DocumentKey), (EventOrder, &'a DocumentChange, i64)>,
}

impl<'a> Documents<'a> {
    pub(super) fn new(stored: HashMap<DocumentKey, DocumentFacts>) -> Self {
        Self { stored, merged: BTreeMap::new(), out_of_order: BTreeMap::new() }
    }

    /// Merges the facts of a change applied at `generation`; returns how many of its
    /// documents arrived out of order.
    pub(super) fn apply(&mut self, change: &'a ChangeInput, generation: u64) -> u64 {
        let mut late = BTreeSet::new();
        for document in &change.documents {
            let incoming = DocumentFacts {
                generation,
                revision: document.revision.clone(),
                watermark: document.watermark,
                tombstone: document.tombstone,
                event_timestamp_ms: document.event_timestamp_ms,
            };
            let current = self.merged.get(&document.key).or_else(|| self.stored.get(&document.key));
            let merged = merge(current, &incoming);
            if merged.order.is_out_of_order() {
                late.insert(&document.key);
                self.out_of_order
                    .insert((generation, &document.key), (merged.order, document, change.now_ms));
            }
            self.merged.insert(&document.key, merged.facts);
        }
        late.len() as u64
    }

    /// The statements that write each touched document's facts and record the late ones.
    pub(super) fn statements(&self) -> Result<Vec<Statement<'a>>> {
        let mut rows = Vec::with_capacity(self.merged.len());
        for (key, facts) in &self.merged {
            let watermark = facts.watermark.map(|value| to_i64("watermark", value)).transpose()?;
            rows.push((*key, to_i64("generation", facts.generation)?, facts, watermark));
        }
        let mut statements = multi_row(
            &rows,
            DOCUMENT_ROWS_PER_STATEMENT,
            (UPSERT_DOCUMENTS, 8, UPSERT_DOCUMENTS_SUFFIX),
            |&(key, generation, facts, watermark), params| {
                params.extend([
                    Param::text(&key.tenant_id),
                    Param::text(&key.namespace),
                    Param::text(&key.doc_id),
                    Param::int(generation),
                    Param::Text(facts.revision.clone().map(Into::into)),
                    Param::Int(watermark),
                    Param::int(i64::from(facts.tombstone)),
                    Param::Int(facts.event_timestamp_ms),
                ]);
            },
        );
        let mut late = Vec::with_capacity(self.out_of_order.len());
        for (&(generation, _), &(order, document, now_ms)) in &self.out_of_order {
            let watermark =
                document.watermark.map(|value| to_i64("watermark", value)).transpose()?;
            late.push((to_i64("generation", generation)?, order, document, watermark, now_ms));
        }
        statements.extend(multi_row(
            &late,
            OUT_OF_ORDER_ROWS_PER_STATEMENT,
            (INSERT_OUT_OF_ORDER, 11, ""),
            |&(generation, order, document, watermark, now_ms), params| {
                let (event_order, evidence) = order_to_columns(order);
                params.extend([
                    Param::int(generation),
                    Param::text(&document.key.tenant_id),
                    Param::text(&document.key.namespace),
                    Param::text(&document.key.doc_id),
                    Param::text(event_order),
                    Param::optional_text(evidence),
                    Param::optional_text(document.revision.as_deref()),
                    Param::Int(watermark),
                    Param::int(i64::from(document.tombstone)),
                    Param::Int(document.event_timestamp_ms),
                    Param::int(now_ms),
                ]);
            },
        ));
        Ok(statements)
    }
}

/// The stored `event_order` and `evidence` of an out-of-order change.
fn order_to_columns(order: EventOrder) -> (&'static str, Option<&'static str>) {
    let evidence = |evidence| match evidence {
        Evidence::Revision => "revision",
        Evidence::Watermark => "watermark",
        Evidence::EventTimestamp => "event_timestamp",
        Evidence::Arrival => "arrival",
    };
    match order {
        EventOrder::First => ("first", None),
        EventOrder::Newer(by) => ("newer", Some(evidence(by))),
        EventOrder::Same(by) => ("same", Some(evidence(by))),
        EventOrder::OutOfOrder(by) => ("out_of_order", Some(evidence(by))),
        EventOrder::UnprovenAfterDeletion => ("unproven_after_deletion", None),
    }
}

/// The order [`order_to_columns`] stored.
pub(crate) fn order_from_columns(event_order: &str, evidence: Option<&str>) -> Result<EventOrder> {
    let by = match evidence {
        Some("revision") => Some(Evidence::Revision),
        Some("watermark") => Some(Evidence::Watermark),
        Some("event_timestamp") => Some(Evidence::EventTimestamp),
        Some("arrival") => Some(Evidence::Arrival),
        None => None,
        Some(other) => {
            return Err(StateError::Corrupt { field: "evidence", value: format!("{other:?}") });
        }
    };
    Ok(match (event_order, by) {
        ("first", None) => EventOrder::First,
        ("newer", Some(by)) => EventOrder::Newer(by),
        ("same", Some(by)) => EventOrder::Same(by),
        ("out_of_order", Some(by)) => EventOrder::OutOfOrder(by),
        ("unproven_after_deletion", None) => EventOrder::UnprovenAfterDeletion,
        _ => {
            return Err(StateError::Corrupt {
                field: "event order",
                value: format!("{event_order:?}"),
            });
        }
    })
}
