//! The conformance suite against PostgreSQL, a fresh database per test, plus what only a
//! server has (authentication).
//!
//! Each test creates `kyro_state_<random>` on the server named by `KYRO_TEST_DATABASE_URL` and
//! drops it when done, even when the test fails.

use kyro_core::ErrorKind;
use kyro_state::{StateBackend, StateError, StateStore, suite};
use sqlx::Any;
use sqlx::migrate::MigrateDatabase;

const DATABASE_URL_VAR: &str = "KYRO_TEST_DATABASE_URL";

/// A fresh PostgreSQL database, force-dropped on drop.
struct TestDatabase {
    url: String,
}

impl TestDatabase {
    async fn new() -> Self {
        sqlx::any::install_default_drivers();
        let server_url = server_url();
        let name = format!("kyro_state_{}", uuid::Uuid::new_v4().simple());
        let url = with_database(&server_url, &name);
        if let Err(error) = Any::create_database(&url).await {
            panic!(
                "cannot create a test database on the PostgreSQL server named by \
                 {DATABASE_URL_VAR} ({error}); run scripts/setup-postgres.sh and export the \
                 {DATABASE_URL_VAR} it prints"
            );
        }
        Self { url }
    }
}

impl Drop for TestDatabase {
    #[expect(clippy::print_stderr, reason = "a leaked test database is worth a line, not a panic")]
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread with its own
        // runtime can. `force` ends connections a killed child or an open store left behind.
        let url = self.url.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(Any::force_drop_database(&url))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: failed to drop test database: {dropped:?}");
        }
    }
}

fn server_url() -> String {
    match std::env::var(DATABASE_URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{DATABASE_URL_VAR} is not set: the PostgreSQL state store tests need a server. Run \
             scripts/setup-postgres.sh and export the {DATABASE_URL_VAR} it prints \
             (postgres://kyro:kyro@127.0.0.1:5432/kyro_test)"
        ),
    }
}

/// `server_url` with its database name replaced by `name`, keeping any query parameters.
fn with_database(server_url: &str, name: &str) -> String {
    let (without_query, query) = match server_url.split_once('?') {
        Some((without_query, query)) => (without_query, Some(query)),
        None => (server_url, None),
    };
    let authority_start = without_query.find("://").map_or(0, |idx| idx + 3);
    let authority_end = without_query[authority_start..]
        .find('/')
        .map_or(without_query.len(), |idx| authority_start + idx);
    let mut url = format!("{}/{name}", &without_query[..authority_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

#[tokio::test]
async fn fresh_store_is_empty() {
    suite::ledger::fresh_store_is_empty(&TestDatabase::new().await.url).await;
}

#[tokio::test]
async fn applied_changes_advance_by_one() {
    suite::ledger::applied_changes_advance_by_one(&TestDatabase::new().await.url).await;
}

#[tokio::test]
async fn generation_survives_reopen() {
    suite::ledger::generation_survives_reopen(&TestDatabase::new().await.url).await;
}

#[tokio::test]
async fn replay_with_same_fingerprint_changes_nothing() {
    suite::ledger::replay_with_same_fingerprint_changes_nothing(&TestDatabase::new().await.url)
        .await;
}

#[tokio::test]
async fn replay_with_different_fingerprint_conflicts() {
    suite::ledger::replay_with_different_fingerprint_conflicts(&TestDatabase::new().await.url)
        .await;
}

#[tokio::test]
async fn scope_generations_track_latest_change() {
    suite::ledger::scope_generations_track_latest_change(&TestDatabase::new().await.url).await;
}

#[tokio::test]
async fn document_state_tracks_latest_facts() {
    suite::ledger::document_state_tracks_latest_facts(&TestDatabase::new().await.url).await;
}

#[tokio::test]
async fn document_facts_only_move_forward() {
    suite::order::document_facts_only_move_forward(&TestDatabase::new().await.url).await;
}

#[tokio::test]
async fn arrival_order_never_undoes_a_deletion() {
    suite::order::arrival_order_never_undoes_a_deletion(&TestDatabase::new().await.url).await;
}

#[tokio::test]
async fn duplicates_within_one_change_are_recorded_once() {
    suite::ledger::duplicates_within_one_change_are_recorded_once(&TestDatabase::new().await.url)
        .await;
}

#[tokio::test]
async fn large_changes_are_batched() {
    suite::ledger::large_changes_are_batched(&TestDatabase::new().await.url).await;
}

#[tokio::test]
async fn out_of_range_watermark_is_rejected_before_writing() {
    suite::ledger::out_of_range_watermark_is_rejected_before_writing(
        &TestDatabase::new().await.url,
    )
    .await;
}

#[tokio::test]
async fn inputs_are_bound_not_spliced() {
    suite::batch::inputs_are_bound_not_spliced(&TestDatabase::new().await.url).await;
}

#[tokio::test]
async fn primer_lists_recent_events_newest_first() {
    suite::batch::primer_lists_recent_events_newest_first(&TestDatabase::new().await.url).await;
}

#[tokio::test]
async fn batches_apply_in_order_and_recognize_replays_inside_the_batch() {
    suite::batch::batches_apply_in_order_and_recognize_replays_inside_the_batch(
        &TestDatabase::new().await.url,
    )
    .await;
}

#[tokio::test]
async fn batches_recognize_earlier_events_and_capture_every_change() {
    suite::batch::batches_recognize_earlier_events_and_capture_every_change(
        &TestDatabase::new().await.url,
    )
    .await;
}

#[tokio::test]
async fn a_fresh_store_is_seeded_from_a_primer_once() {
    suite::batch::a_fresh_store_is_seeded_from_a_primer_once(&TestDatabase::new().await.url).await;
}

#[tokio::test]
async fn the_same_event_id_from_two_tenants_applies_twice() {
    suite::idempotency::the_same_event_id_from_two_tenants_applies_twice(
        &TestDatabase::new().await.url,
    )
    .await;
}

#[tokio::test]
async fn a_primer_keeps_whose_each_event_was() {
    suite::idempotency::a_primer_keeps_whose_each_event_was(&TestDatabase::new().await.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_apply_once() {
    suite::concurrency::concurrent_duplicates_apply_once(&TestDatabase::new().await.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_instances_never_duplicate_generations() {
    suite::concurrency::concurrent_instances_never_duplicate_generations(
        &TestDatabase::new().await.url,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_apply_each_event_once() {
    suite::concurrency::concurrent_batches_apply_each_event_once(&TestDatabase::new().await.url)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_opens_migrate_once() {
    suite::concurrency::concurrent_opens_migrate_once(&TestDatabase::new().await.url).await;
}

#[tokio::test]
async fn acknowledged_change_is_visible_to_another_instance() {
    suite::concurrency::acknowledged_change_is_visible_to_another_instance(
        &TestDatabase::new().await.url,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_sequences_follow_commit_order_across_stores() {
    suite::hosts::capture_sequences_follow_commit_order_across_stores(
        &TestDatabase::new().await.url,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pruner_at_a_time() {
    suite::hosts::one_pruner_at_a_time(&TestDatabase::new().await.url).await;
}

#[tokio::test]
async fn a_closed_pruner_releases_its_lock() {
    suite::hosts::a_closed_pruner_releases_its_lock(&TestDatabase::new().await.url).await;
}

#[tokio::test]
async fn traces_round_trip() {
    suite::evidence::traces_round_trip(&TestDatabase::new().await.url).await;
}

#[tokio::test]
async fn feedback_round_trips_in_arrival_order() {
    suite::evidence::feedback_round_trips_in_arrival_order(&TestDatabase::new().await.url).await;
}

#[tokio::test]
async fn traces_are_stored_in_batches() {
    suite::evidence::traces_are_stored_in_batches(&TestDatabase::new().await.url).await;
}

#[tokio::test]
async fn capture_steps_are_written_with_their_trace_or_change() {
    suite::evidence::capture_steps_are_written_with_their_trace_or_change(
        &TestDatabase::new().await.url,
    )
    .await;
}

#[tokio::test]
async fn retention_prunes_old_evidence_and_caps_the_capture() {
    suite::evidence::retention_prunes_old_evidence_and_caps_the_capture(
        &TestDatabase::new().await.url,
    )
    .await;
}

#[tokio::test]
async fn retention_deletes_across_chunks() {
    suite::evidence::retention_deletes_across_chunks(&TestDatabase::new().await.url).await;
}

#[tokio::test]
async fn a_bounded_capture_is_trimmed_as_it_is_written() {
    suite::evidence::a_bounded_capture_is_trimmed_as_it_is_written(&TestDatabase::new().await.url)
        .await;
}

#[tokio::test]
async fn measure_apply_rate() {
    let database = TestDatabase::new().await;
    let rate = suite::concurrency::measure_apply_rate(&database.url, "postgres").await;
    println!("{rate}");
}

#[tokio::test]
async fn acknowledged_changes_survive_kill() {
    let database = TestDatabase::new().await;
    suite::crash::acknowledged_changes_survive_kill(&database.url, "postgres::crash_child").await;
}

/// Not a test of its own: the process [`acknowledged_changes_survive_kill`] re-executes and
/// kills. Without the crash variable it returns at once.
#[tokio::test]
async fn crash_child() {
    suite::crash::crash_child_main().await;
}

#[tokio::test]
async fn store_reports_postgres_without_credentials() {
    let database = TestDatabase::new().await;
    let store = StateStore::open(&database.url).await.expect("open");
    let debug = format!("{store:?}");
    assert!(debug.contains("Postgres"), "{debug}");
    assert!(!debug.contains(&database.url) && !debug.contains('@'), "{debug}");
    store.close().await;
}

#[tokio::test]
async fn wrong_password_error_hides_the_password() {
    let database = TestDatabase::new().await;
    let secret = "wrong-pw-5f3a9c";
    let (scheme, rest) = database.url.split_once("://").expect("a postgres:// url");
    let (user_info, host_and_path) =
        rest.split_once('@').expect("KYRO_TEST_DATABASE_URL has user@host");
    let user = user_info.split_once(':').map_or(user_info, |(user, _)| user);
    let bad_url = format!("{scheme}://{user}:{secret}@{host_and_path}");

    let error = StateStore::open(&bad_url).await.expect_err("wrong password");
    assert!(
        matches!(error, StateError::Connect { backend: StateBackend::Postgres, .. }),
        "{error:?}"
    );
    assert_eq!(error.kind(), ErrorKind::Configuration, "{error:?}");
    let chain = suite::error_chain(&error);
    assert!(!chain.contains(secret), "the message leaks the password: {chain}");
    assert!(!format!("{error:?}").contains(secret), "Debug leaks the password: {error:?}");
}
