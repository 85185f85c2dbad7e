//! SQLite tests of the state store: the shared semantic suite (`suite.rs`) against a fresh
//! temporary file per test, plus what only SQLite has (pragmas, file creation) and the URL
//! handling that needs no database.
//!
//! The same suite runs against PostgreSQL in `tests/it/state.rs`.

use std::path::PathBuf;

use kyro_core::ErrorKind;
use sqlx::Row;

use super::suite::{self, error_chain};
use super::{StateBackend, StateError, StateStore};

/// A fresh SQLite database in its own temporary directory, removed on drop.
struct TestDatabase {
    dir: PathBuf,
    url: String,
}

impl TestDatabase {
    fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("kyro-state-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create the test directory");
        let url = format!("sqlite://{}", dir.join("state.db").display());
        Self { dir, url }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn fresh_store_is_empty() {
    suite::fresh_store_is_empty(&TestDatabase::new().url).await;
}

#[tokio::test]
async fn applied_changes_advance_by_one() {
    suite::applied_changes_advance_by_one(&TestDatabase::new().url).await;
}

#[tokio::test]
async fn generation_survives_reopen() {
    suite::generation_survives_reopen(&TestDatabase::new().url).await;
}

#[tokio::test]
async fn replay_with_same_fingerprint_changes_nothing() {
    suite::replay_with_same_fingerprint_changes_nothing(&TestDatabase::new().url).await;
}

#[tokio::test]
async fn replay_with_different_fingerprint_conflicts() {
    suite::replay_with_different_fingerprint_conflicts(&TestDatabase::new().url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_apply_once() {
    suite::concurrent_duplicates_apply_once(&TestDatabase::new().url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_instances_never_duplicate_generations() {
    suite::concurrent_instances_never_duplicate_generations(&TestDatabase::new().url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_opens_migrate_once() {
    suite::concurrent_opens_migrate_once(&TestDatabase::new().url).await;
}

/// Opens racing on a brand-new file, many times: the WAL switch of one opener meets the
/// other's migration lock, which SQLite does not wait for through `busy_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_opens_of_a_new_file_all_succeed() {
    for _ in 0..40 {
        let database = TestDatabase::new();
        let url = database.url.as_str();
        let opens =
            tokio::join!(StateStore::open(url), StateStore::open(url), StateStore::open(url));
        for open in [opens.0, opens.1, opens.2] {
            let store = open.expect("every racing open succeeds");
            assert_eq!(store.current_generation().await.expect("current generation"), 0);
            store.close().await;
        }
    }
}

#[tokio::test]
async fn acknowledged_change_is_visible_to_another_instance() {
    suite::acknowledged_change_is_visible_to_another_instance(&TestDatabase::new().url).await;
}

#[tokio::test]
async fn scope_generations_track_latest_change() {
    suite::scope_generations_track_latest_change(&TestDatabase::new().url).await;
}

#[tokio::test]
async fn document_state_tracks_latest_facts() {
    suite::document_state_tracks_latest_facts(&TestDatabase::new().url).await;
}

#[tokio::test]
async fn duplicates_within_one_change_are_recorded_once() {
    suite::duplicates_within_one_change_are_recorded_once(&TestDatabase::new().url).await;
}

#[tokio::test]
async fn large_changes_are_batched() {
    suite::large_changes_are_batched(&TestDatabase::new().url).await;
}

#[tokio::test]
async fn out_of_range_watermark_is_rejected_before_writing() {
    suite::out_of_range_watermark_is_rejected_before_writing(&TestDatabase::new().url).await;
}

#[tokio::test]
async fn inputs_are_bound_not_spliced() {
    suite::inputs_are_bound_not_spliced(&TestDatabase::new().url).await;
}

#[tokio::test]
async fn primer_lists_recent_events_newest_first() {
    suite::primer_lists_recent_events_newest_first(&TestDatabase::new().url).await;
}

#[tokio::test]
async fn traces_round_trip() {
    suite::traces_round_trip(&TestDatabase::new().url).await;
}

#[tokio::test]
async fn measure_apply_rate() {
    let rate = suite::measure_apply_rate(&TestDatabase::new().url, "sqlite").await;
    println!("{rate}");
}

#[tokio::test]
async fn acknowledged_changes_survive_kill() {
    suite::acknowledged_changes_survive_kill(&TestDatabase::new().url, "state::tests::crash_child")
        .await;
}

/// Not a test of its own: the process [`acknowledged_changes_survive_kill`] re-executes and
/// kills. Without the crash variable it returns at once.
#[tokio::test]
async fn crash_child() {
    suite::crash_child_main().await;
}

#[tokio::test]
async fn every_pooled_connection_is_durable() {
    let database = TestDatabase::new();
    let store = StateStore::open(&database.url).await.expect("open");
    assert_eq!(store.backend(), StateBackend::Sqlite);
    // Hold several connections at once so the check covers more than the first one.
    let mut connections = Vec::new();
    for _ in 0..3 {
        connections.push(store.pool.acquire().await.expect("acquire"));
    }
    for conn in &mut connections {
        let journal_mode: String = sqlx::query("PRAGMA journal_mode")
            .fetch_one(&mut **conn)
            .await
            .and_then(|row| row.try_get(0))
            .expect("journal_mode");
        assert_eq!(journal_mode, "wal");
        let synchronous: i64 = sqlx::query("PRAGMA synchronous")
            .fetch_one(&mut **conn)
            .await
            .and_then(|row| row.try_get(0))
            .expect("synchronous");
        assert_eq!(synchronous, 2, "synchronous = FULL");
        let busy_timeout: i64 = sqlx::query("PRAGMA busy_timeout")
            .fetch_one(&mut **conn)
            .await
            .and_then(|row| row.try_get(0))
            .expect("busy_timeout");
        assert_eq!(busy_timeout, 10_000);
    }
    drop(connections);
    store.close().await;
}

#[tokio::test]
async fn direct_connections_are_durable_too() {
    let database = TestDatabase::new();
    let store = StateStore::open(&database.url).await.expect("open");
    let direct = store.direct.as_ref().expect("sqlite serves requests on direct connections");
    for (journal_mode, synchronous, busy_timeout) in direct.settings().await.expect("settings") {
        assert_eq!(journal_mode, "wal");
        assert_eq!(synchronous, 2, "synchronous = FULL");
        assert_eq!(busy_timeout, 10_000);
    }
    store.close().await;
    let closed = store.read_freshness(&["all".to_owned()], &[]).await.expect_err("closed");
    assert!(matches!(closed, StateError::Closed), "{closed:?}");
}

#[tokio::test]
async fn open_creates_the_file_and_relative_paths_work() {
    let database = TestDatabase::new();
    let path = database.dir.join("created.db");
    assert!(!path.exists());
    let store =
        StateStore::open(&format!("sqlite://{}", path.display())).await.expect("open creates");
    assert!(path.exists());
    store.close().await;

    // `sqlite:<path>` without slashes is accepted too.
    let store = StateStore::open(&format!("sqlite:{}", path.display())).await.expect("reopen");
    assert_eq!(store.current_generation().await.expect("current generation"), 0);
    store.close().await;
}

#[tokio::test]
async fn unsupported_and_in_memory_urls_are_refused() {
    let error = StateStore::open("mysql://kyro:hunter2@db/kyro").await.expect_err("mysql");
    assert!(
        matches!(&error, StateError::UnsupportedUrl { scheme: Some(scheme) } if scheme == "mysql")
    );
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert_no_secret(&error, "hunter2");

    let error = StateStore::open("hunter2").await.expect_err("no scheme");
    assert!(matches!(error, StateError::UnsupportedUrl { scheme: None }), "{error:?}");
    assert_no_secret(&error, "hunter2");

    for url in ["sqlite::memory:", "sqlite://:memory:", "sqlite://state.db?mode=memory"] {
        let error = StateStore::open(url).await.expect_err(url);
        assert!(matches!(error, StateError::InMemorySqlite), "{url}: {error:?}");
    }
}

#[tokio::test]
async fn missing_directory_is_a_connect_error_naming_the_path() {
    let database = TestDatabase::new();
    let path = database.dir.join("no-such-dir").join("state.db");
    let error =
        StateStore::open(&format!("sqlite://{}", path.display())).await.expect_err("no dir");
    assert!(
        matches!(error, StateError::Connect { backend: StateBackend::Sqlite, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains(&path.display().to_string()), "{error}");
    assert_eq!(error.kind(), ErrorKind::Configuration);
}

/// An unreachable PostgreSQL server needs no running database: the error must not leak the
/// password and must classify as retryable.
#[tokio::test]
async fn unreachable_postgres_error_hides_the_password() {
    let error = StateStore::open("postgres://kyro:s3cr3t-pw@127.0.0.1:1/kyro_state")
        .await
        .expect_err("nothing listens on port 1");
    assert!(
        matches!(error, StateError::Connect { backend: StateBackend::Postgres, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("127.0.0.1:1/kyro_state"), "{error}");
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert_no_secret(&error, "s3cr3t-pw");
}

fn assert_no_secret(error: &StateError, secret: &str) {
    let chain = error_chain(error);
    let debug = format!("{error:?}");
    assert!(!chain.contains(secret), "the message leaks the secret: {chain}");
    assert!(!debug.contains(secret), "Debug leaks the secret: {debug}");
}

#[tokio::test]
async fn feedback_round_trips_in_arrival_order() {
    suite::feedback_round_trips_in_arrival_order(&TestDatabase::new().url).await;
}

#[tokio::test]
async fn traces_are_stored_in_batches() {
    suite::traces_are_stored_in_batches(&TestDatabase::new().url).await;
}

#[tokio::test]
async fn batches_apply_in_order_and_recognize_replays_inside_the_batch() {
    suite::batches_apply_in_order_and_recognize_replays_inside_the_batch(&TestDatabase::new().url)
        .await;
}

#[tokio::test]
async fn capture_steps_are_written_with_their_trace_or_change() {
    suite::capture_steps_are_written_with_their_trace_or_change(&TestDatabase::new().url).await;
}

#[tokio::test]
async fn a_fresh_store_is_seeded_from_a_primer_once() {
    suite::a_fresh_store_is_seeded_from_a_primer_once(&TestDatabase::new().url).await;
}

#[tokio::test]
async fn retention_prunes_old_evidence_and_caps_the_capture() {
    suite::retention_prunes_old_evidence_and_caps_the_capture(&TestDatabase::new().url).await;
}

#[tokio::test]
async fn retention_deletes_across_chunks() {
    suite::retention_deletes_across_chunks(&TestDatabase::new().url).await;
}

#[tokio::test]
async fn concurrent_batches_apply_each_event_once() {
    suite::concurrent_batches_apply_each_event_once(&TestDatabase::new().url).await;
}

#[tokio::test]
async fn a_bounded_capture_is_trimmed_as_it_is_written() {
    suite::a_bounded_capture_is_trimmed_as_it_is_written(&TestDatabase::new().url).await;
}
