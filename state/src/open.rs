//! Opening a store: URL handling without leaking credentials, SQLite's file settings, and the
//! schema migrations both backends run unchanged (`migrations/`).

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};
use sqlx::pool::PoolConnectionMetadata;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyConnection, AnyPool, Connection, Row, SqlSafeStr};

use crate::{Result, StateBackend, StateError};

/// Connections per pool. SQLite has one writer at a time anyway; PostgreSQL may be shared by
/// several hosts, so each keeps its share small.
const MAX_CONNECTIONS: u32 = 8;
/// How long a request waits for a pooled connection before the store counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long SQLite waits for another process's write lock before failing with `SQLITE_BUSY`.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The settings of every SQLite connection, pooled or direct: a commit is durable when it
/// returns (`synchronous = FULL` in WAL mode: an acknowledged change survives power loss, not
/// only a killed process), a locked file is waited for (`SQLITE_BUSY_TIMEOUT`), and reads go
/// through a memory map instead of a read(2) per page (the ledger lookups on every retrieve are
/// page reads of a small, hot file).
pub(crate) const SQLITE_CONNECTION_PRAGMAS: [&str; 3] =
    ["PRAGMA synchronous = FULL", "PRAGMA busy_timeout = 10000", "PRAGMA mmap_size = 268435456"];

/// A SQLite store's file, opened and migrated: its pool and where it lives.
pub(crate) struct OpenedSqlite {
    pub(crate) pool: AnyPool,
    pub(crate) location: String,
    pub(crate) path: std::path::PathBuf,
}

/// Opens (creating if missing) and migrates a SQLite file, and returns its pool.
pub(crate) async fn open_sqlite(url: &str) -> Result<OpenedSqlite> {
    let backend = StateBackend::Sqlite;
    let invalid_url = |source| StateError::InvalidUrl { backend, source };
    if is_in_memory_sqlite(url) {
        return Err(StateError::InMemorySqlite);
    }
    let sqlite_options = SqliteConnectOptions::from_str(url).map_err(invalid_url)?;
    let location = sqlite_options.get_filename().display().to_string();
    let any_options =
        AnyConnectOptions::from_str(&sqlite_url_creating_file(url)).map_err(invalid_url)?;
    let connect_error =
        |source| StateError::Connect { backend, location: location.clone(), source };

    // One connection first: switch the file to WAL (a persistent, per-file setting that
    // needs an exclusive lock) and migrate, before a pool exists to race for the file.
    let mut conn = AnyConnection::connect_with(&any_options).await.map_err(connect_error)?;
    configure_sqlite_connection(&mut conn).await.map_err(connect_error)?;
    let journal_mode = switch_to_wal(&mut conn).await.map_err(connect_error)?;
    if !journal_mode.eq_ignore_ascii_case("wal") {
        return Err(StateError::JournalMode { location: location.clone(), journal_mode });
    }
    // SQLite's migrator takes no lock, so hold the write lock for the whole run: a second
    // process opening the same new file waits, then finds the migrations applied.
    let migrate_error =
        |source| StateError::Migrate { backend, location: location.clone(), source };
    let mut tx = conn
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(|source| migrate_error(MigrateError::Execute(source)))?;
    migrator().run(&mut tx).await.map_err(migrate_error)?;
    tx.commit().await.map_err(|source| migrate_error(MigrateError::Execute(source)))?;
    conn.close().await.map_err(connect_error)?;

    let pool = AnyPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(configure_pooled_sqlite_connection)
        .connect_with(any_options)
        .await
        .map_err(connect_error)?;
    let path = sqlite_options.get_filename().to_owned();
    Ok(OpenedSqlite { pool, location, path })
}

/// Connects to and migrates a PostgreSQL database; returns its pool and `host:port/database`.
pub(crate) async fn open_postgres(url: &str) -> Result<(AnyPool, String)> {
    let backend = StateBackend::Postgres;
    let invalid_url = |source| StateError::InvalidUrl { backend, source };
    let pg_options = PgConnectOptions::from_str(url).map_err(invalid_url)?;
    let location = format!(
        "{}:{}/{}",
        pg_options.get_host(),
        pg_options.get_port(),
        pg_options.get_database().unwrap_or_default()
    );
    let any_options = AnyConnectOptions::from_str(url).map_err(invalid_url)?;
    let connect_error =
        |source| StateError::Connect { backend, location: location.clone(), source };

    // One connection first, as for SQLite: a failure surfaces as the driver's own error
    // (refused, authentication failed) at once, where the pool would retry until its
    // acquire timeout and then report only that it timed out.
    let mut conn = AnyConnection::connect_with(&any_options).await.map_err(connect_error)?;
    // The migrator holds a PostgreSQL advisory lock while it runs, so hosts starting
    // together migrate one after the other.
    migrator().run(&mut conn).await.map_err(|source| StateError::Migrate {
        backend,
        location: location.clone(),
        source,
    })?;
    conn.close().await.map_err(connect_error)?;

    let pool = AnyPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(any_options)
        .await
        .map_err(connect_error)?;
    Ok((pool, location))
}

/// The schema, embedded in the binary. The SQL runs unchanged on both backends.
fn migrator() -> Migrator {
    let migration = |version, description: &str, sql: &'static str| {
        Migration::new(
            version,
            description.to_owned().into(),
            MigrationType::Simple,
            sql.into_sql_str(),
            false,
        )
    };
    let mut migrator = Migrator::with_migrations(vec![
        migration(
            1,
            "freshness ledger and trace store",
            include_str!("../migrations/0001_state.sql"),
        ),
        migration(2, "feedback", include_str!("../migrations/0002_feedback.sql")),
        migration(3, "replay capture", include_str!("../migrations/0003_capture.sql")),
        migration(
            4,
            "change events keyed by tenant",
            include_str!("../migrations/0004_tenant_events.sql"),
        ),
        migration(
            5,
            "document facts only move forward",
            include_str!("../migrations/0005_document_order.sql"),
        ),
        migration(
            6,
            "capture sequences across hosts",
            include_str!("../migrations/0006_capture_counter.sql"),
        ),
    ]);
    // A name of our own, so a database shared with another sqlx application keeps both
    // histories apart.
    migrator.dangerous_set_table_name("kyro_state_migrations");
    migrator
}

/// Applies [`SQLITE_CONNECTION_PRAGMAS`] to a sqlx connection.
async fn configure_sqlite_connection(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    for pragma in SQLITE_CONNECTION_PRAGMAS {
        sqlx::query(pragma).execute(&mut *conn).await?;
    }
    Ok(())
}

type ConnectFuture<'c> = Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + 'c>>;

fn configure_pooled_sqlite_connection(
    conn: &mut AnyConnection,
    _metadata: PoolConnectionMetadata,
) -> ConnectFuture<'_> {
    Box::pin(configure_sqlite_connection(conn))
}

/// Switches the file to WAL and returns the journal mode it is in afterwards.
///
/// The switch needs an exclusive lock that SQLite does not wait for through `busy_timeout`:
/// while another process opening the same new file holds its migration lock, the pragma fails
/// at once with `SQLITE_BUSY`. So a busy switch is retried, for as long as `busy_timeout`
/// would have waited. A file already in WAL is left alone without taking the lock.
async fn switch_to_wal(conn: &mut AnyConnection) -> Result<String, sqlx::Error> {
    let current: String =
        sqlx::query("PRAGMA journal_mode").fetch_one(&mut *conn).await?.try_get(0)?;
    if current.eq_ignore_ascii_case("wal") {
        return Ok(current);
    }
    let deadline = tokio::time::Instant::now() + SQLITE_BUSY_TIMEOUT;
    loop {
        match sqlx::query("PRAGMA journal_mode = WAL").fetch_one(&mut *conn).await {
            Ok(row) => return row.try_get(0),
            Err(error) if is_sqlite_busy(&error) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Whether SQLite answered `SQLITE_BUSY` (or one of its extended codes).
fn is_sqlite_busy(error: &sqlx::Error) -> bool {
    const SQLITE_BUSY: i64 = 5;
    let sqlx::Error::Database(database_error) = error else {
        return false;
    };
    database_error
        .code()
        .and_then(|code| code.parse::<i64>().ok())
        .is_some_and(|code| code & 0xff == SQLITE_BUSY)
}

/// The backend a URL's scheme names, if any.
pub(crate) fn backend_of(url: &str) -> Option<StateBackend> {
    let scheme = url_scheme(url)?.to_ascii_lowercase();
    match scheme.as_str() {
        "sqlite" => Some(StateBackend::Sqlite),
        "postgres" | "postgresql" => Some(StateBackend::Postgres),
        _ => None,
    }
}

/// The scheme of `url` when it has a plausible one (`mysql` in `mysql://...`), and nothing
/// else: whatever follows may hold credentials.
pub(crate) fn url_scheme(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let plausible = !scheme.is_empty()
        && scheme.len() <= 32
        && scheme.starts_with(|first: char| first.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    plausible.then_some(scheme)
}

fn is_in_memory_sqlite(url: &str) -> bool {
    let rest = url.split_once(':').map_or(url, |(_, rest)| rest);
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (database, query) = rest.split_once('?').unwrap_or((rest, ""));
    database == ":memory:" || query.split('&').any(|pair| pair == "mode=memory")
}

/// The SQLite URL with `mode=rwc` (create the file if missing) unless a mode is given.
fn sqlite_url_creating_file(url: &str) -> String {
    match url.split_once('?') {
        None => format!("{url}?mode=rwc"),
        Some((_, query)) if query.split('&').any(|pair| pair.starts_with("mode=")) => {
            url.to_owned()
        }
        Some(_) => format!("{url}&mode=rwc"),
    }
}
