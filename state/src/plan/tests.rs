//! The planner of writes, without a database: what a batch decides and the statements it
//! hands to either driver.

use std::collections::HashMap;

use kyro_core::planner::DocumentFacts;

use super::capture::Sequences;
use super::change::{BatchReads, plan_changes};
use super::{ChangeBatch, Write};
use crate::statement::{Param, Statement};
use crate::{
    ApplyOutcome, CaptureRow, CaptureStatus, ChangeInput, DocumentChange, DocumentKey, EventTenant,
    ScopeChange, SourceEvent, StateError,
};

fn change(event_id: Option<&str>, fingerprint: &str, scope_keys: &[&str]) -> ChangeInput {
    ChangeInput {
        source_event: event_id
            .map(|id| SourceEvent::new(EventTenant::Tenant("acme".to_owned()), id)),
        fingerprint: fingerprint.to_owned(),
        scope_keys: scope_keys
            .iter()
            .map(|key| ScopeChange { key: (*key).to_owned(), trigger: "change_event".to_owned() })
            .collect(),
        documents: Vec::new(),
        now_ms: 1_000,
        capture: None,
    }
}

fn document(doc_id: &str, revision: &str, watermark: Option<u64>) -> DocumentChange {
    DocumentChange {
        key: DocumentKey {
            tenant_id: "acme".to_owned(),
            namespace: "support".to_owned(),
            doc_id: doc_id.to_owned(),
        },
        revision: Some(revision.to_owned()),
        watermark,
        tombstone: false,
        event_timestamp_ms: None,
    }
}

fn capture() -> CaptureRow {
    CaptureRow {
        step_type: "change_event".to_owned(),
        tenant_id: Some("acme".to_owned()),
        captured_at_ms: 1_000,
        pre_generation: 0,
        generation: 0,
        status: CaptureStatus::Accepted,
        request: "{}".to_owned(),
        body: "{}".to_owned(),
    }
}

/// A statement as `<first words of its SQL> [params]`, the step id of a capture left out.
fn describe(statement: &Statement<'_>) -> String {
    let words: Vec<&str> = statement.sql.split_whitespace().take(3).collect();
    let params: Vec<String> = statement
        .params
        .iter()
        .map(|param| match param {
            Param::Int(Some(value)) => value.to_string(),
            Param::Text(Some(text)) if text.len() == 32 && !text.contains('-') => "<id>".to_owned(),
            Param::Text(Some(text)) => text.to_string(),
            Param::Int(None) | Param::Text(None) => "null".to_owned(),
        })
        .collect();
    format!("{} [{}]", words.join(" "), params.join(", "))
}

/// What a batch read: the generation before it, the events already processed, no stored
/// document facts, and capture sequences from `first_sequence` on.
fn read(base: u64, known: HashMap<SourceEvent, (u64, String)>, first_sequence: i64) -> BatchReads {
    BatchReads {
        base,
        known,
        stored: HashMap::new(),
        sequences: Sequences { first: first_sequence, last: first_sequence + 9 },
    }
}

fn known(entries: &[(&str, u64, &str)]) -> HashMap<SourceEvent, (u64, String)> {
    let acme = || EventTenant::Tenant("acme".to_owned());
    entries
        .iter()
        .map(|&(id, generation, fingerprint)| {
            (SourceEvent::new(acme(), id), (generation, fingerprint.to_owned()))
        })
        .collect()
}

#[test]
fn a_batch_gets_dense_generations_and_recognizes_replays_and_conflicts() {
    let changes = [
        change(Some("e-1"), "fp", &["tenant:acme"]),
        change(Some("e-0"), "fp", &["tenant:other"]),
        change(Some("e-0"), "changed", &["tenant:other"]),
        change(Some("e-1"), "fp", &["tenant:other"]),
        change(None, "", &["all", "tenant:acme"]),
    ];
    let planned = plan_changes(&changes, read(10, known(&[("e-0", 3, "fp")]), 1), 0).expect("plan");
    assert_eq!(
        planned.output,
        [
            ApplyOutcome::Applied { generation: 11 },
            ApplyOutcome::Replayed { generation: 3 },
            ApplyOutcome::Conflict { generation: 3 },
            ApplyOutcome::Replayed { generation: 11 },
            ApplyOutcome::Applied { generation: 12 },
        ]
    );
    let statements: Vec<String> = planned.statements.iter().map(describe).collect();
    assert_eq!(
        statements,
        [
            "UPDATE kyro_generation SET [12]",
            "INSERT INTO kyro_processed_event [tenant:acme, e-1, 11, fp, 1000]",
            // Each scope once, with its latest change, in key order.
            "INSERT INTO kyro_scope_generation [all, 12, 1000, change_event, tenant:acme, 12, 1000, change_event]",
        ]
    );
}

#[test]
fn replays_write_only_their_capture_steps() {
    let mut replay = change(Some("e-0"), "fp", &["all"]);
    replay.capture = Some(capture());
    let planned =
        plan_changes(std::slice::from_ref(&replay), read(7, known(&[("e-0", 3, "fp")]), 42), 0)
            .expect("plan");
    assert_eq!(planned.output, [ApplyOutcome::Replayed { generation: 3 }]);
    let statements: Vec<String> = planned.statements.iter().map(describe).collect();
    // Sequence 42, answered at the original generation 3 from the current 7, as `replayed`.
    assert_eq!(
        statements,
        [
            "INSERT INTO kyro_capture_step [<id>, 42, 1000, acme, change_event, 7, 3, replayed, {}, {}, 0]"
        ]
    );
}

/// Stored facts newer than a change's are kept, the late document is recorded, and its
/// capture step counts it; a document changed twice in one batch merges in order.
#[test]
fn late_document_facts_are_kept_back_and_recorded() {
    let stored = HashMap::from([(
        document("doc-1", "10", None).key,
        DocumentFacts {
            generation: 3,
            revision: Some("10".to_owned()),
            watermark: Some(50),
            tombstone: false,
            event_timestamp_ms: None,
        },
    )]);
    let mut late = change(Some("e-1"), "fp", &[]);
    late.documents = vec![document("doc-1", "5", Some(60)), document("doc-2", "1", None)];
    late.capture = Some(capture());
    let mut newer = change(Some("e-2"), "fp", &[]);
    newer.documents = vec![document("doc-2", "2", None)];
    let changes = [late, newer];
    let planned = plan_changes(&changes, BatchReads { stored, ..read(3, HashMap::new(), 1) }, 0)
        .expect("plan");
    let statements: Vec<String> = planned.statements.iter().map(describe).collect();
    assert_eq!(
        statements,
        [
            "UPDATE kyro_generation SET [5]",
            "INSERT INTO kyro_processed_event [tenant:acme, e-1, 4, fp, 1000, tenant:acme, e-2, 5, fp, 1000]",
            // Revision 10 stays; the larger watermark is taken, under the late change's
            // generation. doc-2, changed twice, moved to revision 2 of the later change.
            "INSERT INTO kyro_document_state [acme, support, doc-1, 4, 10, 60, 0, null, \
             acme, support, doc-2, 5, 2, null, 0, null]",
            "INSERT INTO kyro_document_out_of_order [4, acme, support, doc-1, out_of_order, \
             revision, 5, 60, 0, null, 1000]",
            "INSERT INTO kyro_capture_step [<id>, 1, 1000, acme, change_event, 3, 4, accepted, {}, {}, 1]",
        ]
    );
}

#[test]
fn a_bounded_capture_is_trimmed_in_the_same_transaction() {
    let mut changes = vec![change(None, "", &["all"]), change(None, "", &["all"])];
    for change in &mut changes {
        change.capture = Some(capture());
    }
    let sequences = Sequences { first: 11, last: 12 };
    let planned =
        plan_changes(&changes, BatchReads { sequences, ..read(0, HashMap::new(), 11) }, 5)
            .expect("plan");
    let last = planned.statements.last().map(describe);
    // Sequences 11 and 12 were added: everything through 7 is beyond the bound, and at most
    // twice the two added go now.
    assert_eq!(last.as_deref(), Some("DELETE FROM kyro_capture_step [7, 4]"));
}

#[test]
fn an_out_of_range_watermark_fails_before_anything_runs() {
    let mut out_of_range = change(Some("e-1"), "fp", &["all"]);
    out_of_range.documents = vec![document("doc-1", "1", Some(u64::MAX))];
    let batch = ChangeBatch::new(vec![out_of_range], 0);
    let error = batch.reads().expect_err("u64::MAX does not fit a BIGINT");
    assert!(matches!(error, StateError::OutOfRange { field: "watermark", .. }), "{error:?}");
}
