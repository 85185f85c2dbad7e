//! What only SQLite has (file settings on every connection, file creation, racing opens of a
//! new file) and the URL handling that needs no database. The conformance suite runs against
//! both backends from `tests/it`.

use kyro_core::ErrorKind;
use sqlx::Row as _;

use crate::suite::{SqliteFile, error_chain};
use crate::{StateBackend, StateError, StateStore};

/// Opens racing on a brand-new file, many times: the WAL switch of one opener meets the
/// other's migration lock, which SQLite does not wait for through `busy_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_opens_of_a_new_file_all_succeed() {
    for _ in 0..40 {
        let database = SqliteFile::create();
        let url = database.url();
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
async fn every_pooled_connection_is_durable() {
    let database = SqliteFile::create();
    let store = StateStore::open(database.url()).await.expect("open");
    assert_eq!(store.pool.backend, StateBackend::Sqlite);
    // Hold several connections at once so the check covers more than the first one.
    let mut connections = Vec::new();
    for _ in 0..3 {
        connections.push(store.pool.pool.acquire().await.expect("acquire"));
    }
    for conn in &mut connections {
        let mut settings = Vec::new();
        for pragma in ["journal_mode", "synchronous", "busy_timeout"] {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA {pragma}")))
                .fetch_one(&mut **conn)
                .await
                .expect("pragma");
            settings.push(match row.try_get::<String, _>(0) {
                Ok(text) => text,
                Err(_) => row.try_get::<i64, _>(0).expect("a number").to_string(),
            });
        }
        assert_eq!(settings, ["wal", "2", "10000"], "WAL, synchronous = FULL, busy timeout");
    }
    drop(connections);
    store.close().await;
}

#[tokio::test]
async fn direct_connections_are_durable_too() {
    fn settings(connection: &mut rusqlite::Connection) -> crate::Result<(String, i64, i64)> {
        let pragma = |name: &str| -> rusqlite::Result<rusqlite::types::Value> {
            connection.query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
        };
        let text = |value| match value {
            rusqlite::types::Value::Text(text) => text,
            other => format!("{other:?}"),
        };
        let int = |value| match value {
            rusqlite::types::Value::Integer(value) => value,
            _ => -1,
        };
        let error = |source| StateError::Sqlite { operation: "read the settings", source };
        Ok((
            text(pragma("journal_mode").map_err(error)?),
            int(pragma("synchronous").map_err(error)?),
            int(pragma("busy_timeout").map_err(error)?),
        ))
    }
    let database = SqliteFile::create();
    let store = StateStore::open(database.url()).await.expect("open");
    let direct = store.direct.as_ref().expect("sqlite serves requests on direct connections");
    let writer = direct.on_writer(settings).await.expect("writer settings");
    let reader = direct.with_reader(settings).expect("reader settings");
    for (journal_mode, synchronous, busy_timeout) in [writer, reader] {
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
    let database = SqliteFile::create();
    let path = database.dir().join("created.db");
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
    let database = SqliteFile::create();
    let path = database.dir().join("no-such-dir").join("state.db");
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

/// Events recorded before the ledger was keyed by tenant (migration 4) become global: still
/// listed, still deduplicated for events that name no tenant, and never matched by a tenant.
#[tokio::test]
async fn events_recorded_before_tenant_keys_become_global() {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    use sqlx::{Connection, SqlSafeStr};

    use crate::{ApplyOutcome, ChangeInput, EventTenant, ProcessedEvent, SourceEvent};

    let database = SqliteFile::create();
    sqlx::any::install_default_drivers();
    let url = format!("{}?mode=rwc", database.url());
    let mut conn = sqlx::AnyConnection::connect(&url).await.expect("connect");
    let before_tenant_keys = [
        include_str!("../migrations/0001_state.sql"),
        include_str!("../migrations/0002_feedback.sql"),
        include_str!("../migrations/0003_capture.sql"),
    ];
    let migrations = before_tenant_keys
        .into_iter()
        .zip(1..)
        .map(|(sql, version)| {
            let description = format!("migration {version}").into();
            Migration::new(version, description, MigrationType::Simple, sql.into_sql_str(), false)
        })
        .collect();
    let mut migrator = Migrator::with_migrations(migrations);
    migrator.dangerous_set_table_name("kyro_state_migrations");
    migrator.run(&mut conn).await.expect("the first three migrations");
    sqlx::query(
        "INSERT INTO kyro_processed_event (source_event_id, generation, fingerprint, \
         processed_at_ms) VALUES ('old-1', 1, 'fp', 0)",
    )
    .execute(&mut conn)
    .await
    .expect("an event of the old schema");
    sqlx::query("UPDATE kyro_generation SET value = 1 WHERE id = 1")
        .execute(&mut conn)
        .await
        .expect("its generation");
    conn.close().await.expect("close");

    let store = StateStore::open(database.url()).await.expect("open migrates");
    let primer = store.primer(10).await.expect("primer");
    assert_eq!(
        primer.processed_events,
        [ProcessedEvent {
            tenant: EventTenant::Global,
            source_event_id: "old-1".to_owned(),
            generation: 1,
            fingerprint: "fp".to_owned(),
        }]
    );
    let event = |tenant: EventTenant| ChangeInput {
        source_event: Some(SourceEvent::new(tenant, "old-1")),
        fingerprint: "fp".to_owned(),
        scope_keys: Vec::new(),
        documents: Vec::new(),
        now_ms: 0,
        capture: None,
    };
    let outcomes = store
        .apply_changes(&[event(EventTenant::Global), event(EventTenant::Tenant("a".to_owned()))])
        .await
        .expect("apply");
    assert_eq!(
        outcomes,
        [ApplyOutcome::Replayed { generation: 1 }, ApplyOutcome::Applied { generation: 2 }]
    );
    store.close().await;
}
