//! The SQL the store runs, written once for both backends: the migrations' tables, TEXT and
//! BIGINT columns only, `$N` placeholders, `ON CONFLICT` and `RETURNING` (SQLite >= 3.35).
//!
//! Fixed statements are constants; the builders below add placeholders for a number of rows
//! or keys and nothing else.

use crate::statement::{push_placeholders, push_row_matches};

pub(crate) const SELECT_GENERATION: &str = "SELECT value FROM kyro_generation WHERE id = 1";
/// A no-op update that takes the counter's row lock (PostgreSQL; SQLite's `BEGIN IMMEDIATE`
/// already holds the write lock), so what the transaction reads next sees every change
/// committed before it.
pub(crate) const LOCK_GENERATION: &str =
    "UPDATE kyro_generation SET value = value WHERE id = 1 RETURNING value";
pub(crate) const SET_GENERATION: &str = "UPDATE kyro_generation SET value = $1 WHERE id = 1";

pub(crate) const INSERT_PROCESSED_EVENTS: &str = "INSERT INTO kyro_processed_event \
     (tenant_key, source_event_id, generation, fingerprint, processed_at_ms) VALUES ";
#[cfg(any(test, feature = "test-suite"))]
pub(crate) const SELECT_RECENT_EVENTS: &str = "SELECT tenant_key, source_event_id, generation, \
     fingerprint FROM kyro_processed_event ORDER BY generation DESC LIMIT $1";
pub(crate) const SELECT_EVENTS_UPTO: &str = "SELECT tenant_key, source_event_id, generation, \
     fingerprint FROM kyro_processed_event WHERE generation <= $1 \
     ORDER BY generation DESC LIMIT $2";

pub(crate) const UPSERT_SCOPES: &str = "INSERT INTO kyro_scope_generation \
     (scope_key, generation, acknowledged_at_ms, change_trigger) VALUES ";
pub(crate) const UPSERT_SCOPES_SUFFIX: &str = " ON CONFLICT (scope_key) DO UPDATE SET \
     generation = excluded.generation, acknowledged_at_ms = excluded.acknowledged_at_ms, \
     change_trigger = excluded.change_trigger";
#[cfg(any(test, feature = "test-suite"))]
pub(crate) const SELECT_ALL_SCOPES: &str = "SELECT scope_key, generation, acknowledged_at_ms, \
     change_trigger FROM kyro_scope_generation ORDER BY scope_key";

pub(crate) const UPSERT_DOCUMENTS: &str = "INSERT INTO kyro_document_state (tenant_id, namespace, \
     doc_id, generation, revision, watermark, tombstone, event_timestamp_ms) VALUES ";
pub(crate) const UPSERT_DOCUMENTS_SUFFIX: &str = " ON CONFLICT (tenant_id, namespace, doc_id) \
     DO UPDATE SET generation = excluded.generation, revision = excluded.revision, \
     watermark = excluded.watermark, tombstone = excluded.tombstone, \
     event_timestamp_ms = excluded.event_timestamp_ms";

pub(crate) const INSERT_OUT_OF_ORDER: &str = "INSERT INTO kyro_document_out_of_order \
     (generation, tenant_id, namespace, doc_id, event_order, evidence, revision, watermark, \
     tombstone, event_timestamp_ms, recorded_at_ms) VALUES ";
pub(crate) const SELECT_OUT_OF_ORDER: &str = "SELECT generation, tenant_id, namespace, doc_id, \
     event_order, evidence, revision, watermark, tombstone, event_timestamp_ms, recorded_at_ms \
     FROM kyro_document_out_of_order ORDER BY generation DESC, tenant_id, namespace, doc_id \
     LIMIT $1";

pub(crate) const INSERT_TRACES: &str =
    "INSERT INTO kyro_trace (trace_id, tenant_id, created_at_ms, body) VALUES ";
pub(crate) const INSERT_TRACES_SUFFIX: &str =
    " ON CONFLICT (trace_id) DO NOTHING RETURNING trace_id";
pub(crate) const SELECT_TRACE: &str =
    "SELECT trace_id, tenant_id, created_at_ms, body FROM kyro_trace WHERE trace_id = $1";
pub(crate) const SELECT_RECENT_TRACES: &str = "SELECT trace_id, tenant_id, created_at_ms, body \
     FROM kyro_trace ORDER BY created_at_ms DESC, trace_id DESC LIMIT $1";

pub(crate) const INSERT_CAPTURE_ROWS: &str = "INSERT INTO kyro_capture_step (step_id, sequence, \
     captured_at_ms, tenant_id, step_type, pre_generation, generation, status, request, body, \
     documents_out_of_order) VALUES ";
/// Allocates `$1` capture sequences and returns the last: the row lock it takes is held until
/// commit, so a later transaction's sequences are larger and it commits later.
pub(crate) const ADVANCE_CAPTURE_COUNTER: &str =
    "UPDATE kyro_capture_counter SET value = value + $1 WHERE id = 1 RETURNING value";
pub(crate) const SELECT_LAST_CAPTURE_SEQUENCE: &str =
    "SELECT COALESCE(MAX(sequence), 0) FROM kyro_capture_step";
pub(crate) const SELECT_RECENT_CAPTURE: &str = "SELECT sequence, captured_at_ms, tenant_id, \
     step_type, pre_generation, generation, status, request, body, documents_out_of_order \
     FROM kyro_capture_step ORDER BY sequence DESC LIMIT $1";

pub(crate) const INSERT_FEEDBACK: &str = "INSERT INTO kyro_feedback \
     (feedback_id, trace_id, tenant_id, signal, item_ids, comment, received_at_ms, trace_known) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
pub(crate) const SELECT_FEEDBACK_SINCE: &str = concat!(
    "SELECT trace_id, tenant_id, signal, item_ids, comment, received_at_ms, trace_known \
     FROM kyro_feedback",
    " WHERE received_at_ms >= $1 ORDER BY received_at_ms, feedback_id LIMIT $2"
);
pub(crate) const SELECT_FEEDBACK: &str = concat!(
    "SELECT trace_id, tenant_id, signal, item_ids, comment, received_at_ms, trace_known \
     FROM kyro_feedback",
    " WHERE trace_id = $1 ORDER BY received_at_ms, feedback_id"
);

pub(crate) const COUNT_EVIDENCE: &str = "SELECT (SELECT COUNT(*) FROM kyro_trace), \
     (SELECT COUNT(*) FROM kyro_feedback), (SELECT COUNT(*) FROM kyro_capture_step)";

// Retention deletes a bounded chunk per statement; `$1` is the cutoff, `$2` the chunk size.
// `RETURNING` counts what went on both backends alike.
pub(crate) const DELETE_TRACES_BEFORE: &str = "DELETE FROM kyro_trace WHERE trace_id IN \
     (SELECT trace_id FROM kyro_trace WHERE created_at_ms < $1 ORDER BY created_at_ms LIMIT $2) \
     RETURNING created_at_ms";
pub(crate) const DELETE_FEEDBACK_BEFORE: &str = "DELETE FROM kyro_feedback WHERE feedback_id IN \
     (SELECT feedback_id FROM kyro_feedback WHERE received_at_ms < $1 \
     ORDER BY received_at_ms LIMIT $2) RETURNING received_at_ms";
pub(crate) const DELETE_CAPTURE_BEFORE: &str = "DELETE FROM kyro_capture_step WHERE step_id IN \
     (SELECT step_id FROM kyro_capture_step WHERE captured_at_ms < $1 \
     ORDER BY captured_at_ms LIMIT $2) RETURNING sequence";
pub(crate) const DELETE_CAPTURE_THROUGH: &str = "DELETE FROM kyro_capture_step WHERE step_id IN \
     (SELECT step_id FROM kyro_capture_step WHERE sequence <= $1 ORDER BY sequence LIMIT $2) \
     RETURNING sequence";
/// [`DELETE_CAPTURE_THROUGH`] without the count, for a write that only trims: a statement that
/// is executed rather than queried must return no rows (rusqlite refuses one that does).
pub(crate) const TRIM_CAPTURE_THROUGH: &str = "DELETE FROM kyro_capture_step WHERE step_id IN \
     (SELECT step_id FROM kyro_capture_step WHERE sequence <= $1 ORDER BY sequence LIMIT $2)";

/// `SELECT` of the processed events among `n_events` (tenant key, event id) pairs.
pub(crate) fn processed_events_lookup(n_events: usize) -> String {
    let mut sql = String::from(
        "SELECT tenant_key, source_event_id, generation, fingerprint FROM kyro_processed_event \
         WHERE ",
    );
    push_row_matches(&mut sql, &["tenant_key", "source_event_id"], 1, n_events);
    sql
}

/// `SELECT` of the stored facts of `n_documents` documents, three placeholders each.
pub(crate) fn document_lookup(n_documents: usize) -> String {
    let mut sql = String::from(
        "SELECT tenant_id, namespace, doc_id, generation, revision, watermark, tombstone, \
         event_timestamp_ms FROM kyro_document_state WHERE ",
    );
    push_row_matches(&mut sql, &["tenant_id", "namespace", "doc_id"], 1, n_documents);
    sql
}

/// One `SELECT` of the current generation when `with_generation` (`kind` 0), the stored
/// generations of `n_keys` scope keys (`kind` 1, placeholders first) and the stored facts of
/// `n_documents` documents (`kind` 2, three placeholders each), as one `UNION ALL` with aligned,
/// explicitly typed columns: one statement sees one snapshot on both backends.
pub(crate) fn freshness_lookup(with_generation: bool, n_keys: usize, n_documents: usize) -> String {
    let mut parts = Vec::with_capacity(3);
    if with_generation {
        parts.push(
            "SELECT CAST(0 AS BIGINT) AS kind, value AS generation, \
             CAST(NULL AS TEXT) AS scope_key, CAST(NULL AS BIGINT) AS acknowledged_at_ms, \
             CAST(NULL AS TEXT) AS tenant_id, CAST(NULL AS TEXT) AS namespace, \
             CAST(NULL AS TEXT) AS doc_id, CAST(NULL AS TEXT) AS revision, \
             CAST(NULL AS BIGINT) AS watermark, CAST(0 AS BIGINT) AS tombstone, \
             CAST(NULL AS BIGINT) AS event_timestamp_ms FROM kyro_generation WHERE id = 1"
                .to_owned(),
        );
    }
    if n_keys > 0 {
        let mut sql = String::from(
            "SELECT CAST(1 AS BIGINT), generation, scope_key, acknowledged_at_ms, \
             CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), \
             CAST(NULL AS BIGINT), CAST(0 AS BIGINT), CAST(NULL AS BIGINT) \
             FROM kyro_scope_generation WHERE scope_key IN (",
        );
        push_placeholders(&mut sql, 1, n_keys);
        sql.push(')');
        parts.push(sql);
    }
    if n_documents > 0 {
        let mut sql = String::from(
            "SELECT CAST(2 AS BIGINT), generation, CAST(NULL AS TEXT), CAST(NULL AS BIGINT), \
             tenant_id, namespace, doc_id, revision, watermark, tombstone, event_timestamp_ms \
             FROM kyro_document_state WHERE ",
        );
        push_row_matches(&mut sql, &["tenant_id", "namespace", "doc_id"], n_keys + 1, n_documents);
        parts.push(sql);
    }
    parts.join(" UNION ALL ")
}
