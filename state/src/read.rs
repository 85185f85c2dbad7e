//! Every read the store makes, as queries planned without IO and the decoding of their rows.
//!
//! A read that needs several queries gets them run in one snapshot by the driver; the common
//! freshness read is a single `UNION ALL` statement, which sees one snapshot on both backends
//! without a transaction.

use std::collections::HashMap;

use crate::error::{limit_to_i64, to_u64};
use crate::plan::order_from_columns;
use crate::sql::{
    COUNT_EVIDENCE, SELECT_EVENTS_UPTO, SELECT_FEEDBACK, SELECT_FEEDBACK_SINCE, SELECT_GENERATION,
    SELECT_OUT_OF_ORDER, SELECT_RECENT_CAPTURE, SELECT_RECENT_TRACES, SELECT_TRACE,
    freshness_lookup,
};
use crate::statement::{Column, Param, Query, Row, Statement};
use crate::{
    CaptureRow, CapturedStep, DocumentChange, DocumentKey, DocumentState, EventTenant,
    EvidenceCounts, FeedbackRow, FreshnessView, OutOfOrderDocument, ProcessedEvent, Result,
    StateError, TraceRow,
};

/// Keys and documents per freshness lookup: far below both backends' bind parameter limits.
const SCOPE_KEYS_PER_LOOKUP: usize = 500;
const DOCUMENT_KEYS_PER_LOOKUP: usize = 200;

const FRESHNESS_COLUMNS: &[Column] = &[
    Column::Int,
    Column::Int,
    Column::NullableText,
    Column::NullableInt,
    Column::NullableText,
    Column::NullableText,
    Column::NullableText,
    Column::NullableText,
    Column::NullableInt,
    Column::Int,
    Column::NullableInt,
];
const GENERATION_COLUMNS: &[Column] = &[Column::Int];
#[cfg(any(test, feature = "test-suite"))]
const SCOPE_COLUMNS: &[Column] = &[Column::Text, Column::Int, Column::Int, Column::Text];
const EVENT_COLUMNS: &[Column] = &[Column::Text, Column::Text, Column::Int, Column::Text];
const TRACE_COLUMNS: &[Column] = &[Column::Text, Column::Text, Column::Int, Column::Text];
const FEEDBACK_COLUMNS: &[Column] = &[
    Column::Text,
    Column::NullableText,
    Column::Text,
    Column::Text,
    Column::NullableText,
    Column::Int,
    Column::Int,
];
const CAPTURE_COLUMNS: &[Column] = &[
    Column::Int,
    Column::Int,
    Column::NullableText,
    Column::Text,
    Column::Int,
    Column::Int,
    Column::Text,
    Column::Text,
    Column::Text,
    Column::Int,
];
const OUT_OF_ORDER_COLUMNS: &[Column] = &[
    Column::Int,
    Column::Text,
    Column::Text,
    Column::Text,
    Column::Text,
    Column::NullableText,
    Column::NullableText,
    Column::NullableInt,
    Column::Int,
    Column::NullableInt,
    Column::Int,
];

/// The lookups of a freshness read: the generation with the first chunk of keys and
/// documents, further chunks only when a request names more than one statement should bind.
pub(crate) fn freshness_queries<'a>(
    scope_keys: &[&'a String],
    documents: &[&'a DocumentKey],
) -> Vec<Query<'a>> {
    let key_chunks: Vec<&[&String]> = scope_keys.chunks(SCOPE_KEYS_PER_LOOKUP).collect();
    let document_chunks: Vec<&[&DocumentKey]> =
        documents.chunks(DOCUMENT_KEYS_PER_LOOKUP).collect();
    let n_queries = key_chunks.len().max(document_chunks.len()).max(1);
    let mut queries = Vec::with_capacity(n_queries);
    for query_idx in 0..n_queries {
        let keys = key_chunks.get(query_idx).copied().unwrap_or_default();
        let documents = document_chunks.get(query_idx).copied().unwrap_or_default();
        let mut params = Vec::with_capacity(keys.len() + documents.len() * 3);
        params.extend(keys.iter().map(|key| Param::text(key.as_str())));
        for key in documents {
            params.extend([
                Param::text(&key.tenant_id),
                Param::text(&key.namespace),
                Param::text(&key.doc_id),
            ]);
        }
        let sql = freshness_lookup(query_idx == 0, keys.len(), documents.len());
        queries.push(Statement { sql: sql.into(), params }.returning(FRESHNESS_COLUMNS));
    }
    queries
}

/// The view of a freshness read from its rows: scope generations and documents in the order
/// they were asked for, those never recorded left out.
pub(crate) fn freshness_view(
    scope_keys: &[&String],
    documents: &[&DocumentKey],
    rows: Vec<Vec<Row>>,
) -> Result<FreshnessView> {
    let mut current_generation = None;
    let mut stored_scopes: HashMap<String, (u64, i64)> = HashMap::new();
    let mut stored_documents: HashMap<DocumentKey, DocumentState> = HashMap::new();
    for mut row in rows.into_iter().flatten() {
        let generation = to_u64("generation", row.int(1)?)?;
        match row.int(0)? {
            0 => current_generation = Some(generation),
            1 => {
                let acknowledged_at_ms = row.optional_int(3)?.unwrap_or_default();
                stored_scopes.insert(
                    row.optional_text(2)?.unwrap_or_default(),
                    (generation, acknowledged_at_ms),
                );
            }
            _ => {
                let document = decode_document(&mut row, generation)?;
                stored_documents.insert(document.key.clone(), document);
            }
        }
    }
    let current_generation = current_generation
        .ok_or(StateError::Corrupt { field: "generation", value: "no row".to_owned() })?;
    let mut scope_generations = Vec::with_capacity(stored_scopes.len());
    let mut scope_acknowledged_at_ms = Vec::with_capacity(stored_scopes.len());
    for key in scope_keys {
        if let Some(&(generation, acknowledged_at_ms)) = stored_scopes.get(key.as_str()) {
            scope_generations.push(((*key).clone(), generation));
            scope_acknowledged_at_ms.push(acknowledged_at_ms);
        }
    }
    let documents = documents.iter().filter_map(|key| stored_documents.remove(*key)).collect();
    Ok(FreshnessView { current_generation, scope_generations, scope_acknowledged_at_ms, documents })
}

/// A document row of the freshness lookup (columns 4 to 10).
fn decode_document(row: &mut Row, generation: u64) -> Result<DocumentState> {
    let text = |row: &mut Row, idx| row.optional_text(idx).map(Option::unwrap_or_default);
    Ok(DocumentState {
        key: DocumentKey {
            tenant_id: text(row, 4)?,
            namespace: text(row, 5)?,
            doc_id: text(row, 6)?,
        },
        generation,
        revision: row.optional_text(7)?,
        watermark: row
            .optional_int(8)?
            .map(|watermark| to_u64("watermark", watermark))
            .transpose()?,
        tombstone: row.int(9)? != 0,
        event_timestamp_ms: row.optional_int(10)?,
    })
}

pub(crate) fn generation_query() -> Query<'static> {
    Statement::new(SELECT_GENERATION, Vec::new()).returning(GENERATION_COLUMNS)
}

pub(crate) fn decode_generation(rows: Vec<Vec<Row>>) -> Result<u64> {
    let value = crate::plan::single_int(rows.into_iter().next(), "generation")?;
    to_u64("generation", value)
}

#[cfg(any(test, feature = "test-suite"))]
/// The queries of a primer: the generation, every scope, the `limit` newest events.
pub(crate) fn primer_queries(limit: usize) -> Vec<Query<'static>> {
    vec![
        generation_query(),
        Statement::new(crate::sql::SELECT_ALL_SCOPES, Vec::new()).returning(SCOPE_COLUMNS),
        Statement::new(crate::sql::SELECT_RECENT_EVENTS, vec![Param::int(limit_to_i64(limit))])
            .returning(EVENT_COLUMNS),
    ]
}

#[cfg(any(test, feature = "test-suite"))]
pub(crate) fn decode_primer(rows: Vec<Vec<Row>>) -> Result<crate::Primer> {
    let mut rows = rows.into_iter();
    let current_generation = decode_generation(rows.next().into_iter().collect())?;
    let mut scope_generations = Vec::new();
    for mut row in rows.next().unwrap_or_default() {
        scope_generations.push(crate::ScopeGeneration {
            key: row.text(0)?,
            generation: to_u64("generation", row.int(1)?)?,
            acknowledged_at_ms: row.int(2)?,
            trigger: row.text(3)?,
        });
    }
    let processed_events = decode_events(rows.next().unwrap_or_default())?;
    Ok(crate::Primer { current_generation, scope_generations, processed_events })
}

/// The `limit` newest change events processed at or before `generation`, newest first.
pub(crate) fn events_upto_query(generation: i64, limit: usize) -> Query<'static> {
    let params = vec![Param::int(generation), Param::int(limit_to_i64(limit))];
    Statement::new(SELECT_EVENTS_UPTO, params).returning(EVENT_COLUMNS)
}

pub(crate) fn decode_events(rows: Vec<Row>) -> Result<Vec<ProcessedEvent>> {
    let mut events = Vec::with_capacity(rows.len());
    for mut row in rows {
        events.push(ProcessedEvent {
            tenant: EventTenant::from_key(&row.text(0)?)?,
            source_event_id: row.text(1)?,
            generation: to_u64("generation", row.int(2)?)?,
            fingerprint: row.text(3)?,
        });
    }
    Ok(events)
}

pub(crate) fn trace_query(trace_id: &str) -> Query<'_> {
    Statement::new(SELECT_TRACE, vec![Param::text(trace_id)]).returning(TRACE_COLUMNS)
}

pub(crate) fn recent_traces_query(limit: usize) -> Query<'static> {
    Statement::new(SELECT_RECENT_TRACES, vec![Param::int(limit_to_i64(limit))])
        .returning(TRACE_COLUMNS)
}

pub(crate) fn decode_traces(rows: Vec<Row>) -> Result<Vec<TraceRow>> {
    let mut traces = Vec::with_capacity(rows.len());
    for mut row in rows {
        traces.push(TraceRow {
            trace_id: row.text(0)?,
            tenant_id: row.text(1)?,
            created_at_ms: row.int(2)?,
            body: row.text(3)?,
            capture: None,
        });
    }
    Ok(traces)
}

pub(crate) fn feedback_query(trace_id: &str) -> Query<'_> {
    Statement::new(SELECT_FEEDBACK, vec![Param::text(trace_id)]).returning(FEEDBACK_COLUMNS)
}

pub(crate) fn feedback_since_query(since_ms: i64, limit: usize) -> Query<'static> {
    let params = vec![Param::int(since_ms), Param::int(limit_to_i64(limit))];
    Statement::new(SELECT_FEEDBACK_SINCE, params).returning(FEEDBACK_COLUMNS)
}

pub(crate) fn decode_feedback(rows: Vec<Row>) -> Result<Vec<FeedbackRow>> {
    let mut entries = Vec::with_capacity(rows.len());
    for mut row in rows {
        entries.push(FeedbackRow {
            trace_id: row.text(0)?,
            tenant_id: row.optional_text(1)?,
            signal: row.text(2)?,
            item_ids: row.text(3)?,
            comment: row.optional_text(4)?,
            received_at_ms: row.int(5)?,
            trace_known: row.int(6)? != 0,
        });
    }
    Ok(entries)
}

pub(crate) fn recent_capture_query(limit: usize) -> Query<'static> {
    Statement::new(SELECT_RECENT_CAPTURE, vec![Param::int(limit_to_i64(limit))])
        .returning(CAPTURE_COLUMNS)
}

/// Capture steps read newest first, returned oldest first.
pub(crate) fn decode_capture(rows: Vec<Row>) -> Result<Vec<CapturedStep>> {
    let mut steps = Vec::with_capacity(rows.len());
    for mut row in rows.into_iter().rev() {
        steps.push(CapturedStep {
            sequence: row.int(0)?,
            row: CaptureRow {
                captured_at_ms: row.int(1)?,
                tenant_id: row.optional_text(2)?,
                step_type: row.text(3)?,
                pre_generation: to_u64("pre_generation", row.int(4)?)?,
                generation: to_u64("generation", row.int(5)?)?,
                status: row.text(6)?.parse()?,
                request: row.text(7)?,
                body: row.text(8)?,
            },
            documents_out_of_order: to_u64("documents_out_of_order", row.int(9)?)?,
        });
    }
    Ok(steps)
}

pub(crate) fn out_of_order_query(limit: usize) -> Query<'static> {
    Statement::new(SELECT_OUT_OF_ORDER, vec![Param::int(limit_to_i64(limit))])
        .returning(OUT_OF_ORDER_COLUMNS)
}

pub(crate) fn decode_out_of_order(rows: Vec<Row>) -> Result<Vec<OutOfOrderDocument>> {
    let mut documents = Vec::with_capacity(rows.len());
    for mut row in rows {
        let order = order_from_columns(&row.text(4)?, row.optional_text(5)?.as_deref())?;
        let watermark = row.optional_int(7)?.map(|value| to_u64("watermark", value)).transpose()?;
        documents.push(OutOfOrderDocument {
            generation: to_u64("generation", row.int(0)?)?,
            change: DocumentChange {
                key: DocumentKey {
                    tenant_id: row.text(1)?,
                    namespace: row.text(2)?,
                    doc_id: row.text(3)?,
                },
                revision: row.optional_text(6)?,
                watermark,
                tombstone: row.int(8)? != 0,
                event_timestamp_ms: row.optional_int(9)?,
            },
            order,
            recorded_at_ms: row.int(10)?,
        });
    }
    Ok(documents)
}

pub(crate) fn evidence_counts_query() -> Query<'static> {
    Statement::new(COUNT_EVIDENCE, Vec::new()).returning(&[Column::Int, Column::Int, Column::Int])
}

pub(crate) fn decode_evidence_counts(rows: Vec<Row>) -> Result<EvidenceCounts> {
    let row = rows
        .into_iter()
        .next()
        .ok_or(StateError::Corrupt { field: "evidence counts", value: "no row".to_owned() })?;
    Ok(EvidenceCounts {
        traces: to_u64("traces", row.int(0)?)?,
        feedback: to_u64("feedback", row.int(1)?)?,
        capture_steps: to_u64("capture_steps", row.int(2)?)?,
    })
}
