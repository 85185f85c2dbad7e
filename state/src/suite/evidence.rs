//! Evidence: traces, feedback, capture steps written with what they record, and retention.

use kyro_core::ErrorKind;
use kyro_core::planner::PacketStatus;

use super::{event_change, invalidation, open};
use crate::plan::PRUNE_CHUNK_ROWS;
use crate::{
    CaptureRow, CaptureStatus, ChangeInput, FeedbackRow, StateError, StateStore, TraceRow,
};

pub async fn traces_round_trip(url: &str) {
    let store = open(url).await;
    let traces: Vec<TraceRow> = (1..=3)
        .map(|trace_idx| TraceRow {
            trace_id: format!("t-{trace_idx}"),
            tenant_id: "acme".to_owned(),
            created_at_ms: trace_idx * 1_000,
            body: format!("{{\"trace\":{trace_idx},\"steps\":[\"plan\",\"fetch\"]}}"),
            capture: None,
        })
        .collect();
    for trace in &traces {
        store.put_trace(trace).await.expect("put trace");
    }
    assert_eq!(store.get_trace("t-2").await.expect("get"), Some(traces[1].clone()));
    assert_eq!(store.get_trace("t-missing").await.expect("get"), None);
    assert_eq!(
        store.recent_traces(2).await.expect("recent"),
        vec![traces[2].clone(), traces[1].clone()]
    );

    let mut overwrite = traces[0].clone();
    overwrite.body = "{}".to_owned();
    let error = store.put_trace(&overwrite).await.expect_err("trace ids are unique");
    assert!(
        matches!(&error, StateError::DuplicateTrace { trace_id } if trace_id == "t-1"),
        "{error:?}"
    );
    assert_eq!(error.kind(), ErrorKind::InvalidRequest);
    assert_eq!(
        store.get_trace("t-1").await.expect("get"),
        Some(traces[0].clone()),
        "not overwritten"
    );

    // Strictly older than the cutoff: t-1 (1000) goes, t-2 (2000) stays.
    let prune_traces = async || {
        let pruned = store.prune_evidence(2_000, 0, 0, 0).await.expect("prune");
        pruned.expect("no other pruner").traces
    };
    assert_eq!(prune_traces().await, 1);
    assert_eq!(prune_traces().await, 0);
    assert_eq!(
        store.recent_traces(usize::MAX).await.expect("recent"),
        vec![traces[2].clone(), traces[1].clone()]
    );
    assert_eq!(store.get_trace("t-1").await.expect("get"), None);
    store.close().await;
}

pub async fn feedback_round_trips_in_arrival_order(url: &str) {
    let store = open(url).await;
    let entry = |signal: &str, received_at_ms: i64, comment: Option<&str>| FeedbackRow {
        trace_id: "t-1".to_owned(),
        tenant_id: Some("acme".to_owned()),
        signal: signal.to_owned(),
        item_ids: r#"["doc-1"]"#.to_owned(),
        comment: comment.map(str::to_owned),
        received_at_ms,
        trace_known: true,
    };
    let first = entry("stale", 2_000, Some("it's out of date; O'Brien said so"));
    let second = entry("useful", 3_000, None);
    store.put_feedback(&second).await.expect("put feedback");
    store.put_feedback(&first).await.expect("put feedback");
    assert_eq!(store.feedback_for("t-1").await.expect("read feedback"), vec![first, second]);
    assert!(store.feedback_for("t-2").await.expect("read feedback").is_empty());
}

pub async fn traces_are_stored_in_batches(url: &str) {
    let store = open(url).await;
    let trace = |trace_idx: i64| trace_at(format!("batch-{trace_idx}"), trace_idx, false);
    store.put_trace(&trace(2)).await.expect("put trace");
    let outcomes =
        store.put_traces(&[trace(1), trace(2), trace(3)]).await.expect("the batch commits");
    assert!(outcomes[0].is_ok() && outcomes[2].is_ok());
    assert!(matches!(outcomes[1], Err(StateError::DuplicateTrace { .. })), "{outcomes:?}");
    assert_eq!(store.recent_traces(10).await.expect("recent").len(), 3);
    assert_eq!(store.get_trace("batch-3").await.expect("get"), Some(trace(3)));
    // A repeated id inside one batch stores the first; a batch spans several statements.
    let mut big: Vec<TraceRow> = (10..460).map(trace).collect();
    big.insert(1, TraceRow { body: "{\"second\":true}".to_owned(), ..trace(10) });
    let outcomes = store.put_traces(&big).await.expect("the batch commits");
    assert_eq!(outcomes.iter().filter(|outcome| outcome.is_err()).count(), 1);
    assert!(outcomes[1].is_err() && outcomes[0].is_ok() && outcomes[450].is_ok());
    assert_eq!(store.get_trace("batch-10").await.expect("get"), Some(trace(10)));
    assert_eq!(store.evidence_counts().await.expect("counts").traces, 453);
}

/// An `acme` trace with an empty body created at `at_ms`, with a retrieve's capture step taken
/// at the same time when `captured`.
pub(super) fn trace_at(trace_id: String, at_ms: i64, captured: bool) -> TraceRow {
    TraceRow {
        trace_id,
        tenant_id: "acme".to_owned(),
        created_at_ms: at_ms,
        body: "{}".to_owned(),
        capture: captured
            .then(|| CaptureRow { captured_at_ms: at_ms, ..capture("retrieve", "{}") }),
    }
}

/// When the stored capture steps were taken, oldest first (at most 100).
async fn captured_times(store: &StateStore) -> Vec<i64> {
    let steps = store.recent_capture(100).await.expect("capture");
    steps.iter().map(|step| step.row.captured_at_ms).collect()
}

pub(super) fn capture(step_type: &str, body: &str) -> CaptureRow {
    CaptureRow {
        step_type: step_type.to_owned(),
        tenant_id: Some("acme".to_owned()),
        captured_at_ms: 1_000,
        pre_generation: 0,
        generation: 0,
        // A retrieve's answer; a change's capture gets the ledger's instead.
        status: CaptureStatus::Packet(PacketStatus::Complete),
        request: format!("{{\"request\":{body}}}"),
        body: body.to_owned(),
    }
}

pub async fn capture_steps_are_written_with_their_trace_or_change(url: &str) {
    let store = open(url).await;
    let mut trace = TraceRow {
        trace_id: "tr-capture".to_owned(),
        tenant_id: "acme".to_owned(),
        created_at_ms: 1_000,
        body: "{}".to_owned(),
        capture: Some(capture("retrieve", "{\"step\":0}")),
    };
    store.put_traces(std::slice::from_ref(&trace)).await.expect("put").remove(0).expect("stored");
    let mut change = event_change("ev-1", "fp", &["tenant:acme"]);
    change.capture = Some(capture("change_event", "{\"step\":1}"));
    store.apply_changes(std::slice::from_ref(&change)).await.expect("apply");
    // A replay of the same event is captured as such, at its original generation.
    store.apply_changes(std::slice::from_ref(&change)).await.expect("replay");
    // A duplicate trace id stores neither the trace nor its capture step.
    trace.capture = Some(capture("retrieve", "{\"step\":\"dup\"}"));
    assert!(store.put_traces(&[trace]).await.expect("put").remove(0).is_err());

    let steps = store.recent_capture(10).await.expect("capture");
    assert_eq!(steps[0].row.request, "{\"request\":{\"step\":0}}");
    let summary: Vec<(&str, &str, u64, u64, &str)> = steps
        .iter()
        .map(|step| {
            (
                step.row.step_type.as_str(),
                step.row.status.as_str(),
                step.row.pre_generation,
                step.row.generation,
                step.row.body.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("retrieve", "complete", 0, 0, "{\"step\":0}"),
            ("change_event", "accepted", 0, 1, "{\"step\":1}"),
            ("change_event", "replayed", 1, 1, "{\"step\":1}"),
        ]
    );
    assert!(steps.windows(2).all(|pair| pair[0].sequence < pair[1].sequence));
    assert_eq!(
        store.recent_capture(1).await.expect("capture")[0].row.status,
        CaptureStatus::Replayed
    );
    // A reopened store continues the sequence.
    store.close().await;
    let store = open(url).await;
    store
        .apply_changes(&[ChangeInput {
            capture: Some(capture("invalidate", "{}")),
            ..invalidation(&["all"])
        }])
        .await
        .expect("apply");
    let steps = store.recent_capture(10).await.expect("capture");
    assert_eq!(steps.len(), 4);
    assert!(steps[3].sequence > steps[2].sequence);
    let counts = store.evidence_counts().await.expect("counts");
    assert_eq!((counts.traces, counts.feedback, counts.capture_steps), (1, 0, 4));
    store.close().await;
}

pub async fn retention_prunes_old_evidence_and_caps_the_capture(url: &str) {
    let store = open(url).await;
    let traces: Vec<TraceRow> =
        (0..6_i64).map(|idx| trace_at(format!("tr-{idx}"), idx * 100, true)).collect();
    store.put_traces(&traces).await.expect("put");
    for idx in 0..3_i64 {
        store
            .put_feedback(&FeedbackRow {
                trace_id: format!("tr-{idx}"),
                tenant_id: Some("acme".to_owned()),
                signal: "useful".to_owned(),
                item_ids: "[]".to_owned(),
                comment: None,
                received_at_ms: idx * 100,
                trace_known: true,
            })
            .await
            .expect("feedback");
    }
    // Traces before 200, feedback before 100, capture before 100, and at most 3 steps.
    let pruned = store.prune_evidence(200, 100, 100, 3).await.expect("prune").expect("the lock");
    assert_eq!((pruned.traces, pruned.feedback, pruned.capture_steps), (2, 1, 3));
    assert_eq!(captured_times(&store).await, [300, 400, 500]);
    let counts = store.evidence_counts().await.expect("counts");
    assert_eq!((counts.traces, counts.feedback, counts.capture_steps), (4, 2, 3));
    assert_eq!(store.feedback_since(150, 10).await.expect("feedback").len(), 1);
    store.close().await;
}

/// More evidence than several retention chunks hold goes, chunk by chunk, and exactly down to
/// the bounds.
pub async fn retention_deletes_across_chunks(url: &str) {
    let store = open(url).await;
    let n_rows = 2 * PRUNE_CHUNK_ROWS as i64 + 207;
    let rows: Vec<TraceRow> =
        (0..n_rows).map(|idx| trace_at(format!("tr-{idx}"), idx, true)).collect();
    for batch in rows.chunks(200) {
        store.put_traces(batch).await.expect("put");
    }
    // Every trace but the newest 100, the capture before 50, and at most 20 steps.
    let pruned =
        store.prune_evidence(n_rows - 100, 0, 50, 20).await.expect("prune").expect("the lock");
    assert_eq!(
        (pruned.traces, pruned.capture_steps),
        ((n_rows - 100) as u64, (n_rows - 20) as u64)
    );
    let counts = store.evidence_counts().await.expect("counts");
    assert_eq!((counts.traces, counts.capture_steps), (100, 20));
    assert_eq!(captured_times(&store).await, ((n_rows - 20)..n_rows).collect::<Vec<_>>());
    let again = store
        .prune_evidence(n_rows - 100, 0, 50, 20)
        .await
        .expect("prune again")
        .expect("the lock");
    assert_eq!((again.traces, again.feedback, again.capture_steps), (0, 0, 0));
    store.close().await;
}

/// With a bound, each write of capture steps trims the oldest beyond it in the same
/// transaction, at most twice as many as it wrote, so a backlog shrinks batch by batch.
pub async fn a_bounded_capture_is_trimmed_as_it_is_written(url: &str) {
    let store = open(url).await;
    let trace = |idx: i64| trace_at(format!("tr-{idx}"), idx, true);
    let stored = async || store.evidence_counts().await.expect("counts").capture_steps;
    let unbounded: Vec<TraceRow> = (0..20).map(trace).collect();
    store.put_traces(&unbounded).await.expect("put");
    assert_eq!(stored().await, 20, "no bound, nothing trimmed");
    store.bound_capture(5);
    store.put_traces(&[trace(20)]).await.expect("put one");
    assert_eq!(stored().await, 19, "one step added, two trimmed");
    store.put_traces(&(21..29).map(trace).collect::<Vec<_>>()).await.expect("put eight");
    assert_eq!(stored().await, 11, "eight added, sixteen trimmed");
    store.put_traces(&(29..35).map(trace).collect::<Vec<_>>()).await.expect("put six");
    assert_eq!(stored().await, 5, "down to the bound");
    assert_eq!(captured_times(&store).await, [30, 31, 32, 33, 34], "the newest are kept");
    store.close().await;
}
