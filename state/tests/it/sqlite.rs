//! The conformance suite against SQLite: a fresh file in its own temporary directory per
//! test.

use kyro_state::suite::{self, SqliteFile};

#[tokio::test]
async fn fresh_store_is_empty() {
    suite::ledger::fresh_store_is_empty(SqliteFile::create().url()).await;
}

#[tokio::test]
async fn applied_changes_advance_by_one() {
    suite::ledger::applied_changes_advance_by_one(SqliteFile::create().url()).await;
}

#[tokio::test]
async fn generation_survives_reopen() {
    suite::ledger::generation_survives_reopen(SqliteFile::create().url()).await;
}

#[tokio::test]
async fn replay_with_same_fingerprint_changes_nothing() {
    suite::ledger::replay_with_same_fingerprint_changes_nothing(SqliteFile::create().url()).await;
}

#[tokio::test]
async fn replay_with_different_fingerprint_conflicts() {
    suite::ledger::replay_with_different_fingerprint_conflicts(SqliteFile::create().url()).await;
}

#[tokio::test]
async fn scope_generations_track_latest_change() {
    suite::ledger::scope_generations_track_latest_change(SqliteFile::create().url()).await;
}

#[tokio::test]
async fn document_state_tracks_latest_facts() {
    suite::ledger::document_state_tracks_latest_facts(SqliteFile::create().url()).await;
}

#[tokio::test]
async fn document_facts_only_move_forward() {
    suite::order::document_facts_only_move_forward(SqliteFile::create().url()).await;
}

#[tokio::test]
async fn arrival_order_never_undoes_a_deletion() {
    suite::order::arrival_order_never_undoes_a_deletion(SqliteFile::create().url()).await;
}

#[tokio::test]
async fn duplicates_within_one_change_are_recorded_once() {
    suite::ledger::duplicates_within_one_change_are_recorded_once(SqliteFile::create().url()).await;
}

#[tokio::test]
async fn large_changes_are_batched() {
    suite::ledger::large_changes_are_batched(SqliteFile::create().url()).await;
}

#[tokio::test]
async fn out_of_range_watermark_is_rejected_before_writing() {
    suite::ledger::out_of_range_watermark_is_rejected_before_writing(SqliteFile::create().url())
        .await;
}

#[tokio::test]
async fn inputs_are_bound_not_spliced() {
    suite::batch::inputs_are_bound_not_spliced(SqliteFile::create().url()).await;
}

#[tokio::test]
async fn primer_lists_recent_events_newest_first() {
    suite::batch::primer_lists_recent_events_newest_first(SqliteFile::create().url()).await;
}

#[tokio::test]
async fn batches_apply_in_order_and_recognize_replays_inside_the_batch() {
    suite::batch::batches_apply_in_order_and_recognize_replays_inside_the_batch(
        SqliteFile::create().url(),
    )
    .await;
}

#[tokio::test]
async fn batches_recognize_earlier_events_and_capture_every_change() {
    suite::batch::batches_recognize_earlier_events_and_capture_every_change(
        SqliteFile::create().url(),
    )
    .await;
}

#[tokio::test]
async fn a_fresh_store_is_seeded_from_a_primer_once() {
    suite::batch::a_fresh_store_is_seeded_from_a_primer_once(SqliteFile::create().url()).await;
}

#[tokio::test]
async fn the_same_event_id_from_two_tenants_applies_twice() {
    suite::idempotency::the_same_event_id_from_two_tenants_applies_twice(
        SqliteFile::create().url(),
    )
    .await;
}

#[tokio::test]
async fn a_primer_keeps_whose_each_event_was() {
    suite::idempotency::a_primer_keeps_whose_each_event_was(SqliteFile::create().url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_apply_once() {
    suite::concurrency::concurrent_duplicates_apply_once(SqliteFile::create().url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_instances_never_duplicate_generations() {
    suite::concurrency::concurrent_instances_never_duplicate_generations(
        SqliteFile::create().url(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_apply_each_event_once() {
    suite::concurrency::concurrent_batches_apply_each_event_once(SqliteFile::create().url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_opens_migrate_once() {
    suite::concurrency::concurrent_opens_migrate_once(SqliteFile::create().url()).await;
}

#[tokio::test]
async fn acknowledged_change_is_visible_to_another_instance() {
    suite::concurrency::acknowledged_change_is_visible_to_another_instance(
        SqliteFile::create().url(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_sequences_follow_commit_order_across_stores() {
    suite::hosts::capture_sequences_follow_commit_order_across_stores(SqliteFile::create().url())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pruner_at_a_time() {
    suite::hosts::one_pruner_at_a_time(SqliteFile::create().url()).await;
}

#[tokio::test]
async fn a_closed_pruner_releases_its_lock() {
    suite::hosts::a_closed_pruner_releases_its_lock(SqliteFile::create().url()).await;
}

#[tokio::test]
async fn traces_round_trip() {
    suite::evidence::traces_round_trip(SqliteFile::create().url()).await;
}

#[tokio::test]
async fn feedback_round_trips_in_arrival_order() {
    suite::evidence::feedback_round_trips_in_arrival_order(SqliteFile::create().url()).await;
}

#[tokio::test]
async fn traces_are_stored_in_batches() {
    suite::evidence::traces_are_stored_in_batches(SqliteFile::create().url()).await;
}

#[tokio::test]
async fn capture_steps_are_written_with_their_trace_or_change() {
    suite::evidence::capture_steps_are_written_with_their_trace_or_change(
        SqliteFile::create().url(),
    )
    .await;
}

#[tokio::test]
async fn retention_prunes_old_evidence_and_caps_the_capture() {
    suite::evidence::retention_prunes_old_evidence_and_caps_the_capture(SqliteFile::create().url())
        .await;
}

#[tokio::test]
async fn retention_deletes_across_chunks() {
    suite::evidence::retention_deletes_across_chunks(SqliteFile::create().url()).await;
}

#[tokio::test]
async fn a_bounded_capture_is_trimmed_as_it_is_written() {
    suite::evidence::a_bounded_capture_is_trimmed_as_it_is_written(SqliteFile::create().url())
        .await;
}

#[tokio::test]
async fn measure_apply_rate() {
    let rate = suite::concurrency::measure_apply_rate(SqliteFile::create().url(), "sqlite").await;
    println!("{rate}");
}

#[tokio::test]
async fn acknowledged_changes_survive_kill() {
    let database = SqliteFile::create();
    suite::crash::acknowledged_changes_survive_kill(database.url(), "sqlite::crash_child").await;
}

/// Not a test of its own: the process [`acknowledged_changes_survive_kill`] re-executes and
/// kills. Without the crash variable it returns at once.
#[tokio::test]
async fn crash_child() {
    suite::crash::crash_child_main().await;
}
