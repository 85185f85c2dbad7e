//! The state store's one error type and how its failures classify by kind.
//!
//! Messages name the backend and, where useful, the location without credentials: the URL a
//! store is opened with never appears in a message or in `Debug` output. Callers branch on
//! [`StateError::kind`], never on text.

use kyro_core::ErrorKind;
use sqlx::migrate::MigrateError;

use crate::StateBackend;

/// A state store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The URL is neither `sqlite:` nor `postgres:`/`postgresql:`.
    #[error(
        "unsupported state store url scheme {scheme:?}: expected sqlite://<path> or postgres://..."
    )]
    UnsupportedUrl {
        /// The scheme as written, when the URL has a recognizable one.
        scheme: Option<String>,
    },
    /// The URL has a supported scheme but could not be parsed.
    #[error("invalid {backend} state store url")]
    InvalidUrl {
        /// The backend the scheme names.
        backend: StateBackend,
        /// The parser's error; it does not repeat the URL.
        #[source]
        source: sqlx::Error,
    },
    /// An in-memory SQLite database was requested; the ledger must survive restarts.
    #[error("the sqlite state store must be a file: an in-memory database loses the ledger")]
    InMemorySqlite,
    /// The database could not be opened or reached.
    #[error("failed to connect to the {backend} state store at {location}")]
    Connect {
        /// The backend.
        backend: StateBackend,
        /// The SQLite path, or PostgreSQL `host:port/database`.
        location: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// SQLite refused to switch the file to write-ahead logging.
    #[error(
        "the sqlite state store at {location} cannot use WAL (journal_mode is {journal_mode:?})"
    )]
    JournalMode {
        /// The SQLite path.
        location: String,
        /// The journal mode SQLite reported instead of `wal`.
        journal_mode: String,
    },
    /// The schema migrations failed or do not match this build.
    #[error("failed to migrate the {backend} state store at {location}")]
    Migrate {
        /// The backend.
        backend: StateBackend,
        /// The SQLite path, or PostgreSQL `host:port/database`.
        location: String,
        /// The migrator's error.
        #[source]
        source: MigrateError,
    },
    /// A statement failed.
    #[error("failed to {operation} in the {backend} state store")]
    Database {
        /// The backend.
        backend: StateBackend,
        /// What was being done, as a verb phrase (`"apply changes"`).
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A statement on SQLite's direct connections failed.
    #[error("failed to {operation} in the sqlite state store")]
    Sqlite {
        /// What was being done, as a verb phrase.
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: rusqlite::Error,
    },
    /// An unsigned input does not fit the signed 64-bit columns both backends share.
    #[error("{field} {value} is larger than the state store can hold ({max})", max = i64::MAX)]
    OutOfRange {
        /// The input field (`"watermark"`).
        field: &'static str,
        /// The value that was passed.
        value: u64,
    },
    /// The database holds a value no Kyro build writes.
    #[error("the state store holds an invalid {field} ({value}); the ledger is corrupt")]
    Corrupt {
        /// The column.
        field: &'static str,
        /// The value read, or where it was read.
        value: String,
    },
    /// A primer can only seed a store no change was applied to.
    #[error(
        "the state store is already at generation {generation}; only a fresh store can be seeded"
    )]
    NotFresh {
        /// The store's generation.
        generation: u64,
    },
    /// A file next to the SQLite database (the pruner's lock file) could not be used.
    #[error("failed to {operation} next to the sqlite state store")]
    File {
        /// What was being done, as a verb phrase.
        operation: &'static str,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// The store was closed, or its SQLite writer thread stopped.
    #[error("the state store is closed")]
    Closed,
    /// A trace with this id is already stored; traces are never overwritten.
    #[error("trace {trace_id:?} already exists")]
    DuplicateTrace {
        /// The id that was reused.
        trace_id: String,
    },
}

/// The state store's result type.
pub type Result<T, E = StateError> = std::result::Result<T, E>;

impl StateError {
    /// What kind of failure this is, so callers can map it without parsing text.
    ///
    /// `Unavailable` and `Timeout` are retryable: the database was unreachable, busy, or
    /// aborted the transaction to resolve a conflict, and nothing was applied.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::UnsupportedUrl { .. }
            | Self::InvalidUrl { .. }
            | Self::InMemorySqlite
            | Self::JournalMode { .. } => ErrorKind::Configuration,
            // Unreachable or busy is retryable; anything else (authentication failed, no
            // such database, a path SQLite cannot open) needs the configuration fixed.
            Self::Connect { backend, source, .. } => match classify(*backend, source) {
                kind @ (ErrorKind::Unavailable | ErrorKind::Timeout) => kind,
                _ => ErrorKind::Configuration,
            },
            Self::Migrate { backend, source, .. } => match source {
                MigrateError::Execute(error) | MigrateError::ExecuteMigration(error, _) => {
                    classify(*backend, error)
                }
                _ => ErrorKind::Configuration,
            },
            Self::Database { backend, source, .. } => classify(*backend, source),
            Self::Sqlite { source, .. } => classify_sqlite(source),
            Self::Closed | Self::File { .. } => ErrorKind::Unavailable,
            Self::OutOfRange { .. } | Self::DuplicateTrace { .. } | Self::NotFresh { .. } => {
                ErrorKind::InvalidRequest
            }
            Self::Corrupt { .. } => ErrorKind::Internal,
        }
    }
}

/// A stored signed value as the unsigned value it stands for.
pub(crate) fn to_u64(field: &'static str, value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| StateError::Corrupt { field, value: value.to_string() })
}

/// An unsigned input as the signed column value both backends store.
pub(crate) fn to_i64(field: &'static str, value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| StateError::OutOfRange { field, value })
}

/// A row limit as SQL `LIMIT`; anything beyond `i64::MAX` means "all rows" anyway.
pub(crate) fn limit_to_i64(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Classifies a driver error by kind; retryable kinds mean nothing was applied.
fn classify(backend: StateBackend, error: &sqlx::Error) -> ErrorKind {
    match error {
        sqlx::Error::PoolTimedOut => ErrorKind::Timeout,
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => ErrorKind::Unavailable,
        sqlx::Error::Configuration(_) => ErrorKind::Configuration,
        sqlx::Error::Database(database_error) => {
            let code = database_error.code();
            let code = code.as_deref().unwrap_or_default();
            let transient = match backend {
                // Serialization failure, deadlock, lock timeout, too many connections,
                // shutdown, and the connection-exception class.
                StateBackend::Postgres => {
                    matches!(
                        code,
                        "40001" | "40P01" | "55P03" | "53300" | "57P01" | "57P02" | "57P03"
                    ) || code.starts_with("08")
                }
                // SQLITE_BUSY and SQLITE_LOCKED with their extended codes (primary code in the
                // low byte).
                StateBackend::Sqlite => {
                    code.parse::<i32>().is_ok_and(|code| matches!(code & 0xff, 5 | 6))
                }
            };
            if transient { ErrorKind::Unavailable } else { ErrorKind::Internal }
        }
        _ => ErrorKind::Internal,
    }
}

/// Classifies an error of SQLite's direct connections as [`classify`] does the pool's.
fn classify_sqlite(error: &rusqlite::Error) -> ErrorKind {
    match error {
        rusqlite::Error::SqliteFailure(failure, _)
            if matches!(
                failure.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            ErrorKind::Unavailable
        }
        _ => ErrorKind::Internal,
    }
}
