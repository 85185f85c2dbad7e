//! The host's durable state store: the freshness ledger (the runtime generation, per-scope
//! generations, the change-event dedupe ledger and per-document facts) and the trace store.
//!
//! One code path serves SQLite (the embedded default, a local file) and PostgreSQL (hosts that
//! share state) through sqlx's `Any` driver, and both run the same migration SQL
//! (`migrations/`). On SQLite the paths every request takes (the freshness read, trace and
//! change commits) run the same SQL on direct connections instead (`state/direct.rs`), without
//! sqlx's thread hop per statement. Every statement is parameterized: the only SQL assembled at
//! runtime is the list of numbered placeholders for a batch, never text from inputs.
//!
//! The generation lives in a single counter row that every applied change increments inside its
//! own transaction. That row lock (PostgreSQL) or the database write lock (SQLite) serializes
//! appliers, so generations are dense, never reused, and commit in order, across restarts and
//! across hosts sharing one PostgreSQL database.
//!
//! This module deliberately does not decide what a change means (which scopes it touches,
//! whether a reuse entry is stale): callers pass scope keys and document facts and read them
//! back. It keeps no cache either, so replicas sharing PostgreSQL always agree.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use kyro_core::ErrorKind;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};
use sqlx::pool::PoolConnectionMetadata;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Any, AnyConnection, AnyPool, AssertSqlSafe, Connection, Row, SqlSafeStr, Transaction};
use tokio::sync::{Mutex, MutexGuard};

/// Decodes one row of [`freshness_lookup_sql`] into a [`FreshnessRow`] with `$row.$get(column)`,
/// the getter of either driver (sqlx's `try_get`, rusqlite's `get`), so both read the columns
/// one way. `?` returns the driver's error from the enclosing function.
macro_rules! freshness_row {
    ($row:expr, $get:ident) => {{
        let row = $row;
        let generation: i64 = row.$get("generation")?;
        let kind: i64 = row.$get("kind")?;
        Ok(match kind {
            0 => FreshnessRow::Generation(generation),
            1 => FreshnessRow::Scope {
                key: row.$get("scope_key")?,
                generation,
                acknowledged_at_ms: row.$get("acknowledged_at_ms")?,
            },
            _ => FreshnessRow::Document {
                key: DocumentKey {
                    tenant_id: row.$get("tenant_id")?,
                    namespace: row.$get("namespace")?,
                    doc_id: row.$get("doc_id")?,
                },
                generation,
                revision: row.$get("revision")?,
                watermark: row.$get("watermark")?,
                tombstone: row.$get("tombstone")?,
                event_timestamp_ms: row.$get("event_timestamp_ms")?,
            },
        })
    }};
}

mod direct;
#[cfg(test)]
mod suite;
#[cfg(test)]
mod tests;

/// The durable state store shared by every request path of the host.
///
/// Cheap to share behind an `Arc`; all methods take `&self` and run on a connection pool.
pub struct StateStore {
    pool: AnyPool,
    backend: StateBackend,
    /// Where the store lives, without credentials: the SQLite file path, or PostgreSQL
    /// `host:port/database`. Used in error messages and `Debug`.
    location: String,
    /// SQLite admits one writer at a time. Serializing this process's writers here keeps them
    /// out of SQLite's sleep-and-retry busy handler; other processes still wait through
    /// `busy_timeout`. `None` on PostgreSQL, where the counter's row lock queues appliers.
    write_lock: Option<Mutex<()>>,
    /// The capture sequences this host allocates (seeded from the largest stored one) and the
    /// capture's bound, shared with the SQLite writer's jobs.
    capture_log: Arc<direct::CaptureLog>,
    /// SQLite only: the direct connections the serving paths use (`state/direct.rs`).
    direct: Option<direct::Direct>,
}

/// Which database a [`StateStore`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StateBackend {
    /// A local SQLite file (WAL, `synchronous = FULL`).
    Sqlite,
    /// A PostgreSQL database, possibly shared by several hosts.
    Postgres,
}

impl StateBackend {
    /// The stable lowercase name used in messages and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }

    fn from_url(url: &str) -> Option<Self> {
        let scheme = url_scheme(url)?.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Some(Self::Sqlite),
            "postgres" | "postgresql" => Some(Self::Postgres),
            _ => None,
        }
    }
}

impl fmt::Display for StateBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state store failure.
///
/// Messages name the backend and, where useful, the location without credentials; the URL
/// passed to [`StateStore::open`] never appears in a message or in `Debug` output.
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
        /// What was being done, as a verb phrase (`"apply a change"`).
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
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
    #[error("the state store holds a negative {field} ({value}); the ledger is corrupt")]
    Corrupt {
        /// The column.
        field: &'static str,
        /// The value read.
        value: i64,
    },
    /// A primer can only seed a store no change was applied to.
    #[error(
        "the state store is already at generation {generation}; only a fresh store can be seeded"
    )]
    NotFresh {
        /// The store's generation.
        generation: i64,
    },
    /// A statement on SQLite's direct path (`state/direct.rs`) failed.
    #[error("failed to {operation} in the sqlite state store")]
    Sqlite {
        /// What was being done, as a verb phrase.
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: rusqlite::Error,
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
            Self::Closed => ErrorKind::Unavailable,
            Self::OutOfRange { .. } | Self::DuplicateTrace { .. } | Self::NotFresh { .. } => {
                ErrorKind::InvalidRequest
            }
            Self::Corrupt { .. } => ErrorKind::Internal,
        }
    }
}

/// One accepted change: a change event, an invalidation, or a verified mutation ACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeInput {
    /// The idempotency key of a change event; `None` for invalidations and mutation ACKs,
    /// which are never deduplicated.
    pub source_event_id: Option<String>,
    /// A hash of the event body: the same id with a different fingerprint is a conflict.
    pub fingerprint: String,
    /// Every scope the change touches. Duplicate keys are recorded once (the last trigger wins).
    pub scope_keys: Vec<ScopeChange>,
    /// Per-document facts. Duplicate documents are recorded once (the last entry wins).
    pub documents: Vec<DocumentChange>,
    /// The host's clock when the change was accepted, in Unix milliseconds.
    pub now_ms: i64,
    /// The replay capture step to record with the change; its generation and status are
    /// filled in from the change's outcome.
    pub capture: Option<CaptureRow>,
}

/// One captured serving step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureRow {
    /// `retrieve`, `change_event`, `invalidate`, `upsert` or `delete`.
    pub step_type: String,
    /// The tenant the step acted for, when it names one.
    pub tenant_id: Option<String>,
    /// When the step was served, in Unix milliseconds.
    pub captured_at_ms: i64,
    /// The runtime generation the step saw before it ran.
    pub pre_generation: u64,
    /// The generation it answered with (set by the ledger for changes).
    pub generation: u64,
    /// The status it answered with (set by the ledger for changes).
    pub status: String,
    /// The request body as the client sent it.
    pub request: String,
    /// JSON the host writes and reads back verbatim.
    pub body: String,
}

/// A stored capture step, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedStep {
    /// Its order among captured steps.
    pub sequence: i64,
    /// The step.
    pub row: CaptureRow,
}

/// How much evidence is stored, for health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EvidenceCounts {
    /// Stored traces.
    pub traces: u64,
    /// Stored feedback entries.
    pub feedback: u64,
    /// Stored capture steps.
    pub capture_steps: u64,
}

/// What a retention pass deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Traces.
    pub traces: u64,
    /// Feedback entries.
    pub feedback: u64,
    /// Capture steps.
    pub capture_steps: u64,
}

/// A scope a change touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeChange {
    /// The scope key: `all`, `tenant:acme`, `namespace:acme/support`,
    /// `document:acme/support/doc-1`, `connector:pg`, `bundle:b1`, `policy:p`.
    pub key: String,
    /// What produced the change: `change_event`, `write_through`, `manual_invalidation`.
    pub trigger: String,
}

/// Identifies one document.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentKey {
    /// The tenant.
    pub tenant_id: String,
    /// The namespace within the tenant.
    pub namespace: String,
    /// The document id within the namespace.
    pub doc_id: String,
}

/// What a change says about one document. It replaces the stored facts as a whole: a `None`
/// here clears the stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentChange {
    /// The document.
    pub key: DocumentKey,
    /// The source revision, when the change carries one.
    pub revision: Option<String>,
    /// The backend's native watermark, when the change carries one. At most `i64::MAX`.
    pub watermark: Option<u64>,
    /// Whether the document was deleted.
    pub tombstone: bool,
    /// The source's event time in Unix milliseconds, when known.
    pub event_timestamp_ms: Option<i64>,
}

/// What [`StateStore::apply_change`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// The change was committed at this new generation.
    Applied {
        /// The generation allocated to the change.
        generation: u64,
    },
    /// The event id was already processed with the same fingerprint; nothing changed.
    Replayed {
        /// The generation the original event was applied at.
        generation: u64,
    },
    /// The event id was already processed with a different fingerprint; nothing changed.
    Conflict {
        /// The generation the original event was applied at.
        generation: u64,
    },
}

impl ApplyOutcome {
    /// The generation the outcome refers to: new for `Applied`, original otherwise.
    pub fn generation(self) -> u64 {
        match self {
            Self::Applied { generation }
            | Self::Replayed { generation }
            | Self::Conflict { generation } => generation,
        }
    }
}

/// What a strict retrieve checks, read from one consistent snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreshnessView {
    /// The runtime generation at the snapshot.
    pub current_generation: u64,
    /// The generation of the latest change of each requested scope key, in request order.
    /// Keys that never changed are omitted.
    pub scope_generations: Vec<(String, u64)>,
    /// When each of those scope keys' latest change was acknowledged (Unix milliseconds), in
    /// the same order.
    pub scope_acknowledged_at_ms: Vec<i64>,
    /// The stored facts of each requested document, in request order. Documents no change
    /// mentioned are omitted.
    pub documents: Vec<DocumentState>,
}

/// The latest acknowledged facts about one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentState {
    /// The document.
    pub key: DocumentKey,
    /// The generation of the latest change that mentioned it.
    pub generation: u64,
    /// The revision that change carried.
    pub revision: Option<String>,
    /// The watermark that change carried.
    pub watermark: Option<u64>,
    /// Whether that change deleted the document.
    pub tombstone: bool,
    /// The source's event time that change carried.
    pub event_timestamp_ms: Option<i64>,
}

/// Everything a replay or shadow session starts from, read from one consistent snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Primer {
    /// The runtime generation at the snapshot.
    pub current_generation: u64,
    /// Every scope that ever changed, ordered by key.
    pub scope_generations: Vec<ScopeGeneration>,
    /// The most recently processed change events, newest first.
    pub processed_events: Vec<ProcessedEvent>,
}

/// The latest change of one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeGeneration {
    /// The scope key.
    pub key: String,
    /// The generation of its latest change.
    pub generation: u64,
    /// When that change was acknowledged, in Unix milliseconds.
    pub acknowledged_at_ms: i64,
    /// What produced that change.
    pub trigger: String,
}

/// One entry of the change-event dedupe ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessedEvent {
    /// The event's idempotency key.
    pub source_event_id: String,
    /// The generation it was applied at.
    pub generation: u64,
    /// The fingerprint of its body.
    pub fingerprint: String,
}

/// One stored request trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceRow {
    /// Unique id; storing it twice is an error.
    pub trace_id: String,
    /// The tenant the request belonged to.
    pub tenant_id: String,
    /// When the trace was written, in Unix milliseconds.
    pub created_at_ms: i64,
    /// The trace as JSON, stored and returned verbatim.
    pub body: String,
    /// The replay capture step to record in the same transaction.
    pub capture: Option<CaptureRow>,
}

/// Connections per pool. SQLite has one writer at a time anyway; PostgreSQL may be shared by
/// several hosts, so each keeps its share small.
const MAX_CONNECTIONS: u32 = 8;
/// How long a request waits for a pooled connection before the store counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long SQLite waits for another process's write lock before failing with `SQLITE_BUSY`.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Sets `SQLITE_BUSY_TIMEOUT` on a connection.
const SQLITE_BUSY_TIMEOUT_PRAGMA: &str = "PRAGMA busy_timeout = 10000";

/// Rows per multi-row upsert and keys per lookup. Both backends cap bind parameters per
/// statement (SQLite 32766, PostgreSQL 65535); these stay far below and keep statements small
/// enough for the per-connection statement cache.
const SCOPE_ROWS_PER_STATEMENT: usize = 200;
const TRACE_ROWS_PER_STATEMENT: usize = 200;
const CAPTURE_ROWS_PER_STATEMENT: usize = 100;
const DOCUMENT_ROWS_PER_STATEMENT: usize = 100;
const SCOPE_KEYS_PER_LOOKUP: usize = 500;
const DOCUMENT_KEYS_PER_LOOKUP: usize = 200;

const SELECT_GENERATION: &str = "SELECT value FROM kyro_generation WHERE id = 1";
const INCREMENT_GENERATION: &str =
    "UPDATE kyro_generation SET value = value + 1 WHERE id = 1 RETURNING value";
const DECREMENT_GENERATION: &str = "UPDATE kyro_generation SET value = value - 1 WHERE id = 1";
const INSERT_PROCESSED_EVENT: &str = "INSERT INTO kyro_processed_event \
     (source_event_id, generation, fingerprint, processed_at_ms) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (source_event_id) DO NOTHING";
const SELECT_PROCESSED_EVENT: &str =
    "SELECT generation, fingerprint FROM kyro_processed_event WHERE source_event_id = $1";
const SELECT_RECENT_EVENTS: &str = "SELECT source_event_id, generation, fingerprint \
     FROM kyro_processed_event ORDER BY generation DESC LIMIT $1";
const SELECT_ALL_SCOPES: &str = "SELECT scope_key, generation, acknowledged_at_ms, change_trigger \
     FROM kyro_scope_generation ORDER BY scope_key";
const INSERT_TRACE: &str = "INSERT INTO kyro_trace (trace_id, tenant_id, created_at_ms, body) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (trace_id) DO NOTHING";
const SELECT_TRACE: &str =
    "SELECT trace_id, tenant_id, created_at_ms, body FROM kyro_trace WHERE trace_id = $1";
const SELECT_RECENT_TRACES: &str = "SELECT trace_id, tenant_id, created_at_ms, body FROM kyro_trace \
     ORDER BY created_at_ms DESC, trace_id DESC LIMIT $1";
// Retention deletes a bounded chunk per statement (see `prune_evidence`); `$1` is the cutoff,
// `$2` the chunk size.
const DELETE_TRACES_BEFORE: &str = "DELETE FROM kyro_trace WHERE trace_id IN \
     (SELECT trace_id FROM kyro_trace WHERE created_at_ms < $1 ORDER BY created_at_ms LIMIT $2)";
const DELETE_FEEDBACK_BEFORE: &str = "DELETE FROM kyro_feedback WHERE feedback_id IN \
     (SELECT feedback_id FROM kyro_feedback WHERE received_at_ms < $1 \
     ORDER BY received_at_ms LIMIT $2)";
const DELETE_CAPTURE_BEFORE: &str = "DELETE FROM kyro_capture_step WHERE step_id IN \
     (SELECT step_id FROM kyro_capture_step WHERE captured_at_ms < $1 \
     ORDER BY captured_at_ms LIMIT $2)";
const DELETE_CAPTURE_THROUGH: &str = "DELETE FROM kyro_capture_step WHERE step_id IN \
     (SELECT step_id FROM kyro_capture_step WHERE sequence <= $1 ORDER BY sequence LIMIT $2)";
const SELECT_MAX_CAPTURE_SEQUENCE: &str =
    "SELECT COALESCE(MAX(sequence), 0) AS newest FROM kyro_capture_step";
/// Rows a retention chunk deletes at most.
pub const PRUNE_CHUNK_ROWS: usize = 100;

const SET_GENERATION: &str = "UPDATE kyro_generation SET value = $1 WHERE id = 1";
const LOCK_GENERATION: &str =
    "UPDATE kyro_generation SET value = value WHERE id = 1 RETURNING value";
const UPSERT_SCOPES: &str = "INSERT INTO kyro_scope_generation \
     (scope_key, generation, acknowledged_at_ms, change_trigger) VALUES ";
const UPSERT_SCOPES_SUFFIX: &str = " ON CONFLICT (scope_key) DO UPDATE SET \
     generation = excluded.generation, acknowledged_at_ms = excluded.acknowledged_at_ms, \
     change_trigger = excluded.change_trigger";
const UPSERT_DOCUMENTS: &str = "INSERT INTO kyro_document_state (tenant_id, namespace, doc_id, \
     generation, revision, watermark, tombstone, event_timestamp_ms) VALUES ";
const UPSERT_DOCUMENTS_SUFFIX: &str = " ON CONFLICT (tenant_id, namespace, doc_id) DO UPDATE SET \
     generation = excluded.generation, revision = excluded.revision, \
     watermark = excluded.watermark, tombstone = excluded.tombstone, \
     event_timestamp_ms = excluded.event_timestamp_ms";
const INSERT_TRACES: &str =
    "INSERT INTO kyro_trace (trace_id, tenant_id, created_at_ms, body) VALUES ";
const INSERT_TRACES_SUFFIX: &str = " ON CONFLICT (trace_id) DO NOTHING RETURNING trace_id";
const INSERT_PROCESSED_EVENTS: &str = "INSERT INTO kyro_processed_event \
     (source_event_id, generation, fingerprint, processed_at_ms) VALUES ";
const INSERT_CAPTURE_ROWS: &str = "INSERT INTO kyro_capture_step (step_id, sequence, \
     captured_at_ms, tenant_id, step_type, pre_generation, generation, status, request, body) VALUES ";
const SELECT_LAST_CAPTURE_SEQUENCE: &str =
    "SELECT COALESCE(MAX(sequence), 0) AS last_sequence FROM kyro_capture_step";
const SELECT_RECENT_CAPTURE: &str = "SELECT sequence, captured_at_ms, tenant_id, step_type, \
     pre_generation, generation, status, request, body FROM kyro_capture_step \
     ORDER BY sequence DESC LIMIT $1";
const SELECT_EVENTS_UPTO: &str = "SELECT source_event_id, generation, fingerprint \
     FROM kyro_processed_event WHERE generation <= $1 ORDER BY generation DESC LIMIT $2";
const COUNT_EVIDENCE: &str = "SELECT (SELECT COUNT(*) FROM kyro_trace) AS traces, \
     (SELECT COUNT(*) FROM kyro_feedback) AS feedback, \
     (SELECT COUNT(*) FROM kyro_capture_step) AS capture_steps";
const INSERT_FEEDBACK: &str = "INSERT INTO kyro_feedback \
     (feedback_id, trace_id, tenant_id, signal, item_ids, comment, received_at_ms, trace_known) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const SELECT_FEEDBACK_SINCE: &str = "SELECT trace_id, tenant_id, signal, item_ids, comment, \
     received_at_ms, trace_known FROM kyro_feedback WHERE received_at_ms >= $1 \
     ORDER BY received_at_ms, feedback_id LIMIT $2";
const SELECT_FEEDBACK: &str = "SELECT trace_id, tenant_id, signal, item_ids, comment, received_at_ms, trace_known \
     FROM kyro_feedback WHERE trace_id = $1 ORDER BY received_at_ms, feedback_id";

/// One stored feedback entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackRow {
    /// The trace it is about.
    pub trace_id: String,
    /// The trace's tenant, when the trace was known.
    pub tenant_id: Option<String>,
    /// `useful`, `irrelevant`, `stale` or `wrong_scope`.
    pub signal: String,
    /// The items it is about, as a JSON array.
    pub item_ids: String,
    /// Free text.
    pub comment: Option<String>,
    /// When it arrived.
    pub received_at_ms: i64,
    /// Whether the trace existed when it arrived.
    pub trace_known: bool,
}

impl StateStore {
    /// Opens the store and brings its schema up to date.
    ///
    /// `url` is `sqlite://<path>` (the file is created if missing; WAL, `synchronous = FULL`,
    /// a busy timeout) or `postgres://...` / `postgresql://...`. Concurrent opens of one
    /// database are safe: migrations run under a lock (PostgreSQL advisory lock, SQLite write
    /// lock).
    ///
    /// # Errors
    ///
    /// The URL is unsupported or invalid, the database cannot be reached, SQLite cannot use WAL,
    /// or the migrations fail. No error message contains the URL or its credentials.
    pub async fn open(url: &str) -> Result<Self, StateError> {
        sqlx::any::install_default_drivers();
        match StateBackend::from_url(url) {
            Some(StateBackend::Sqlite) => Self::open_sqlite(url).await,
            Some(StateBackend::Postgres) => Self::open_postgres(url).await,
            None => Err(StateError::UnsupportedUrl { scheme: url_scheme(url).map(str::to_owned) }),
        }
    }

    /// The backend this store runs on.
    pub fn backend(&self) -> StateBackend {
        self.backend
    }

    /// Applies one change in a single durable transaction: dedupes its event id, allocates the
    /// next generation, and records its scopes and documents. Returns only after the commit.
    ///
    /// A replayed event id returns the original generation ([`ApplyOutcome::Replayed`] with
    /// the same fingerprint, [`ApplyOutcome::Conflict`] with a different one) and changes
    /// nothing, not even the current generation.
    ///
    /// # Errors
    ///
    /// A watermark above `i64::MAX` ([`StateError::OutOfRange`], checked before anything is
    /// written), or the database failed; then nothing was applied.
    pub async fn apply_change(&self, change: &ChangeInput) -> Result<ApplyOutcome, StateError> {
        if self.direct.is_some() {
            let outcomes = self.apply_changes(std::slice::from_ref(change)).await?;
            return outcomes.first().copied().ok_or(StateError::Closed);
        }
        let db_error = |source| self.database_error("apply a change", source);
        let _write_guard = self.lock_writes().await;
        let mut tx = self.begin_write().await.map_err(db_error)?;
        let outcome = self.apply_in(&mut tx, change).await?;
        self.capture_change(&mut tx, change, outcome).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(outcome)
    }

    /// Records a change's capture step with what the change answered.
    async fn capture_change(
        &self,
        tx: &mut Transaction<'static, Any>,
        change: &ChangeInput,
        outcome: ApplyOutcome,
    ) -> Result<(), StateError> {
        let Some(capture) = &change.capture else { return Ok(()) };
        let db_error = |source| self.database_error("record a capture step", source);
        let (generation, status, pre_generation) = match outcome {
            ApplyOutcome::Applied { generation } => {
                (generation, "accepted", generation.saturating_sub(1))
            }
            ApplyOutcome::Replayed { generation } | ApplyOutcome::Conflict { generation } => {
                let current = read_generation(&mut *tx).await.map_err(db_error)?;
                let status = if matches!(outcome, ApplyOutcome::Replayed { .. }) {
                    "replayed"
                } else {
                    "rejected"
                };
                (generation, status, to_u64("generation", current)?)
            }
        };
        let capture =
            CaptureRow { generation, status: status.to_owned(), pre_generation, ..capture.clone() };
        self.insert_capture(tx, &capture).await
    }

    /// Applies several changes in one durable transaction (group commit), in order: each gets
    /// its own generation, and replays (also of an earlier change in the same batch) are
    /// recognized as in [`StateStore::apply_change`]. Returns after the commit.
    ///
    /// # Errors
    ///
    /// The database failed; nothing of the batch was applied.
    pub async fn apply_changes(
        &self,
        changes: &[ChangeInput],
    ) -> Result<Vec<ApplyOutcome>, StateError> {
        let db_error = |source| self.database_error("apply changes", source);
        let _write_guard = self.lock_writes().await;
        if let Some(direct) = &self.direct {
            let changes = changes.to_vec();
            let capture_log = Arc::clone(&self.capture_log);
            return direct
                .write(move |connection| direct::apply_changes(connection, &changes, &capture_log))
                .await;
        }
        let mut tx = self.begin_write().await.map_err(db_error)?;
        let outcomes = if changes.len() == 1 {
            let outcome = self.apply_in(&mut tx, &changes[0]).await?;
            self.capture_change(&mut tx, &changes[0], outcome).await?;
            vec![outcome]
        } else {
            self.apply_batch_in(&mut tx, changes).await?
        };
        tx.commit().await.map_err(db_error)?;
        Ok(outcomes)
    }

    /// Applies several changes with set-based statements: a fixed number of round trips to the
    /// database per batch instead of four or five per change. Same outcomes as applying them one
    /// by one with [`StateStore::apply_change`] inside one transaction.
    async fn apply_batch_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        changes: &[ChangeInput],
    ) -> Result<Vec<ApplyOutcome>, StateError> {
        let db_error = |source| self.database_error("apply changes", source);
        // Range checks first: nothing is written when any change is out of range.
        let document_rows = changes
            .iter()
            .map(|change| document_rows(&change.documents))
            .collect::<Result<Vec<_>, _>>()?;

        // A no-op update takes the counter's row lock (PostgreSQL; SQLite's BEGIN IMMEDIATE
        // already holds the write lock), so the dedupe lookup below sees every event committed
        // before this transaction, as in `apply_in`.
        let base: i64 = sqlx::query(LOCK_GENERATION)
            .fetch_one(&mut **tx)
            .await
            .and_then(|row| row.try_get(0))
            .map_err(db_error)?;
        let base = to_u64("generation", base)?;
        let event_ids = event_ids(changes);
        let mut known: HashMap<String, (u64, String)> = HashMap::new();
        for chunk in event_ids.chunks(SCOPE_KEYS_PER_LOOKUP) {
            let mut query = sqlx::query(processed_events_lookup_sql(chunk.len()));
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(&mut **tx).await.map_err(db_error)? {
                let generation: i64 = row.try_get("generation").map_err(db_error)?;
                known.insert(
                    row.try_get("source_event_id").map_err(db_error)?,
                    (
                        to_u64("generation", generation)?,
                        row.try_get("fingerprint").map_err(db_error)?,
                    ),
                );
            }
        }

        let BatchPlan { outcomes, generation, new_events, scopes, documents, captures } =
            plan_batch(changes, &document_rows, base, known)?;
        if generation > base {
            sqlx::query(SET_GENERATION)
                .bind(to_i64("generation", generation)?)
                .execute(&mut **tx)
                .await
                .map_err(db_error)?;
        }
        for chunk in new_events.chunks(SCOPE_ROWS_PER_STATEMENT) {
            let mut query = sqlx::query(upsert_sql(INSERT_PROCESSED_EVENTS, chunk.len(), 4, ""));
            for &(id, value, fingerprint, now_ms) in chunk {
                query = query.bind(id).bind(value).bind(fingerprint).bind(now_ms);
            }
            query.execute(&mut **tx).await.map_err(db_error)?;
        }
        for chunk in scopes.chunks(SCOPE_ROWS_PER_STATEMENT) {
            let mut query =
                sqlx::query(upsert_sql(UPSERT_SCOPES, chunk.len(), 4, UPSERT_SCOPES_SUFFIX));
            for &(key, (value, now_ms, trigger)) in chunk {
                query = query.bind(key).bind(value).bind(now_ms).bind(trigger);
            }
            query.execute(&mut **tx).await.map_err(db_error)?;
        }
        for chunk in documents.chunks(DOCUMENT_ROWS_PER_STATEMENT) {
            let mut query =
                sqlx::query(upsert_sql(UPSERT_DOCUMENTS, chunk.len(), 8, UPSERT_DOCUMENTS_SUFFIX));
            for &(value, row) in chunk {
                query = query
                    .bind(row.key.tenant_id.as_str())
                    .bind(row.key.namespace.as_str())
                    .bind(row.key.doc_id.as_str())
                    .bind(value)
                    .bind(row.revision)
                    .bind(row.watermark)
                    .bind(row.tombstone)
                    .bind(row.event_timestamp_ms);
            }
            query.execute(&mut **tx).await.map_err(db_error)?;
        }
        let captures: Vec<&CaptureRow> = captures.iter().collect();
        self.insert_captures(tx, &captures).await?;
        Ok(outcomes)
    }

    async fn apply_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        change: &ChangeInput,
    ) -> Result<ApplyOutcome, StateError> {
        const OPERATION: &str = "apply a change";
        let scope_rows = scope_rows(&change.scope_keys);
        let document_rows = document_rows(&change.documents)?;
        let db_error = |source| self.database_error(OPERATION, source);

        // Increment first: the lock this takes orders concurrent appliers, so the dedupe
        // check below sees every event committed before this transaction.
        let generation_value: i64 = sqlx::query(INCREMENT_GENERATION)
            .fetch_one(&mut **tx)
            .await
            .and_then(|row| row.try_get(0))
            .map_err(db_error)?;
        let generation = to_u64("generation", generation_value)?;

        if let Some(source_event_id) = &change.source_event_id {
            let n_inserted = sqlx::query(INSERT_PROCESSED_EVENT)
                .bind(source_event_id.as_str())
                .bind(generation_value)
                .bind(change.fingerprint.as_str())
                .bind(change.now_ms)
                .execute(&mut **tx)
                .await
                .map_err(db_error)?
                .rows_affected();
            if n_inserted == 0 {
                let row = sqlx::query(SELECT_PROCESSED_EVENT)
                    .bind(source_event_id.as_str())
                    .fetch_one(&mut **tx)
                    .await
                    .map_err(db_error)?;
                let original_generation: i64 = row.try_get("generation").map_err(db_error)?;
                let original_fingerprint: String = row.try_get("fingerprint").map_err(db_error)?;
                // Undo the increment: a replay changes nothing. The counter's row lock is still
                // held by this transaction, so nobody incremented in between.
                sqlx::query(DECREMENT_GENERATION).execute(&mut **tx).await.map_err(db_error)?;
                let generation = to_u64("generation", original_generation)?;
                return Ok(if original_fingerprint == change.fingerprint {
                    ApplyOutcome::Replayed { generation }
                } else {
                    ApplyOutcome::Conflict { generation }
                });
            }
        }

        for chunk in scope_rows.chunks(SCOPE_ROWS_PER_STATEMENT) {
            let sql = upsert_sql(UPSERT_SCOPES, chunk.len(), 4, UPSERT_SCOPES_SUFFIX);
            let mut query = sqlx::query(sql);
            for &(key, trigger) in chunk {
                query = query.bind(key).bind(generation_value).bind(change.now_ms).bind(trigger);
            }
            query.execute(&mut **tx).await.map_err(db_error)?;
        }

        for chunk in document_rows.chunks(DOCUMENT_ROWS_PER_STATEMENT) {
            let sql = upsert_sql(UPSERT_DOCUMENTS, chunk.len(), 8, UPSERT_DOCUMENTS_SUFFIX);
            let mut query = sqlx::query(sql);
            for row in chunk {
                query = query
                    .bind(row.key.tenant_id.as_str())
                    .bind(row.key.namespace.as_str())
                    .bind(row.key.doc_id.as_str())
                    .bind(generation_value)
                    .bind(row.revision)
                    .bind(row.watermark)
                    .bind(row.tombstone)
                    .bind(row.event_timestamp_ms);
            }
            query.execute(&mut **tx).await.map_err(db_error)?;
        }

        Ok(ApplyOutcome::Applied { generation })
    }

    /// Reads what a strict retrieve checks, from one consistent snapshot: the current
    /// generation, the generations of the given scope keys and the state of the given
    /// documents. Every generation returned is at most `current_generation`.
    ///
    /// # Errors
    ///
    /// The database failed or holds corrupt values.
    pub async fn read_freshness(
        &self,
        scope_keys: &[String],
        documents: &[DocumentKey],
    ) -> Result<FreshnessView, StateError> {
        const OPERATION: &str = "read freshness";
        let db_error = |source| self.database_error(OPERATION, source);
        let scope_keys = unique_in_order(scope_keys);
        let documents = unique_in_order(documents);
        if scope_keys.len() <= SCOPE_KEYS_PER_LOOKUP && documents.len() <= DOCUMENT_KEYS_PER_LOOKUP
        {
            return self.read_freshness_at_once(&scope_keys, &documents).await;
        }

        let mut tx = self.begin_snapshot().await.map_err(db_error)?;
        let current_generation = read_generation(&mut tx).await.map_err(db_error)?;
        let current_generation = to_u64("generation", current_generation)?;

        let mut stored_scopes: HashMap<String, (i64, i64)> = HashMap::new();
        for chunk in scope_keys.chunks(SCOPE_KEYS_PER_LOOKUP) {
            let mut query = sqlx::query(scope_lookup_sql(chunk.len()));
            for key in chunk {
                query = query.bind(key.as_str());
            }
            for row in query.fetch_all(&mut *tx).await.map_err(db_error)? {
                stored_scopes.insert(
                    row.try_get("scope_key").map_err(db_error)?,
                    (
                        row.try_get("generation").map_err(db_error)?,
                        row.try_get("acknowledged_at_ms").map_err(db_error)?,
                    ),
                );
            }
        }

        let mut stored_documents: HashMap<DocumentKey, DocumentState> = HashMap::new();
        for chunk in documents.chunks(DOCUMENT_KEYS_PER_LOOKUP) {
            let mut query = sqlx::query(document_lookup_sql(chunk.len()));
            for key in chunk {
                query = query
                    .bind(key.tenant_id.as_str())
                    .bind(key.namespace.as_str())
                    .bind(key.doc_id.as_str());
            }
            for row in query.fetch_all(&mut *tx).await.map_err(db_error)? {
                let document = decode_document(&row, db_error)?;
                stored_documents.insert(document.key.clone(), document);
            }
        }
        tx.commit().await.map_err(db_error)?;

        let mut scope_generations = Vec::with_capacity(stored_scopes.len());
        let mut scope_acknowledged_at_ms = Vec::with_capacity(stored_scopes.len());
        for key in scope_keys {
            if let Some(&(generation, acknowledged_at_ms)) = stored_scopes.get(key.as_str()) {
                scope_generations.push((key.clone(), to_u64("generation", generation)?));
                scope_acknowledged_at_ms.push(acknowledged_at_ms);
            }
        }
        let mut document_states = Vec::with_capacity(stored_documents.len());
        for key in documents {
            if let Some(document) = stored_documents.remove(key) {
                document_states.push(document);
            }
        }
        Ok(FreshnessView {
            current_generation,
            scope_generations,
            scope_acknowledged_at_ms,
            documents: document_states,
        })
    }

    /// [`StateStore::read_freshness`] for the common case, in one statement: a single
    /// `SELECT` sees one snapshot on both backends (SQLite's implicit read transaction,
    /// PostgreSQL's statement snapshot), so it needs no explicit transaction and costs one
    /// round trip to the database instead of five.
    async fn read_freshness_at_once(
        &self,
        scope_keys: &[&String],
        documents: &[&DocumentKey],
    ) -> Result<FreshnessView, StateError> {
        if let Some(direct) = &self.direct {
            let rows = direct
                .read(|connection| direct::freshness_rows(connection, scope_keys, documents))?;
            return freshness_view(scope_keys, documents, rows);
        }
        let db_error = |source| self.database_error("read freshness", source);
        let mut query = sqlx::query(freshness_lookup_sql(scope_keys.len(), documents.len()));
        for key in scope_keys {
            query = query.bind(key.as_str());
        }
        for key in documents {
            query = query
                .bind(key.tenant_id.as_str())
                .bind(key.namespace.as_str())
                .bind(key.doc_id.as_str());
        }
        let rows = query.fetch_all(&self.pool).await.map_err(db_error)?;
        let rows = rows
            .iter()
            .map(|row| freshness_row!(row, try_get))
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(db_error)?;
        freshness_view(scope_keys, documents, rows)
    }

    /// The current runtime generation: 0 for a fresh store, then the generation of the latest
    /// applied change.
    ///
    /// # Errors
    ///
    /// The database failed or holds a corrupt value.
    pub async fn current_generation(&self) -> Result<u64, StateError> {
        let db_error = |source| self.database_error("read the current generation", source);
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        let current_generation = read_generation(&mut conn).await.map_err(db_error)?;
        to_u64("generation", current_generation)
    }

    /// Reads everything needed to prime a replay or shadow session, from one consistent
    /// snapshot: the current generation, every scope generation, and the `limit` most recently
    /// processed change events, newest first.
    ///
    /// # Errors
    ///
    /// The database failed or holds corrupt values.
    pub async fn primer(&self, limit: usize) -> Result<Primer, StateError> {
        const OPERATION: &str = "read the primer";
        let db_error = |source| self.database_error(OPERATION, source);
        let limit = limit_to_i64(limit);

        let mut tx = self.begin_snapshot().await.map_err(db_error)?;
        let current_generation = read_generation(&mut tx).await.map_err(db_error)?;
        let current_generation = to_u64("generation", current_generation)?;
        let scope_rows =
            sqlx::query(SELECT_ALL_SCOPES).fetch_all(&mut *tx).await.map_err(db_error)?;
        let event_rows = sqlx::query(SELECT_RECENT_EVENTS)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;

        let mut scope_generations = Vec::with_capacity(scope_rows.len());
        for row in &scope_rows {
            let generation: i64 = row.try_get("generation").map_err(db_error)?;
            scope_generations.push(ScopeGeneration {
                key: row.try_get("scope_key").map_err(db_error)?,
                generation: to_u64("generation", generation)?,
                acknowledged_at_ms: row.try_get("acknowledged_at_ms").map_err(db_error)?,
                trigger: row.try_get("change_trigger").map_err(db_error)?,
            });
        }
        let mut processed_events = Vec::with_capacity(event_rows.len());
        for row in &event_rows {
            let generation: i64 = row.try_get("generation").map_err(db_error)?;
            processed_events.push(ProcessedEvent {
                source_event_id: row.try_get("source_event_id").map_err(db_error)?,
                generation: to_u64("generation", generation)?,
                fingerprint: row.try_get("fingerprint").map_err(db_error)?,
            });
        }
        Ok(Primer { current_generation, scope_generations, processed_events })
    }

    /// Stores a trace.
    ///
    /// # Errors
    ///
    /// [`StateError::DuplicateTrace`] when the id is already stored (the stored trace is left
    /// unchanged), or the database failed.
    pub async fn put_trace(&self, trace: &TraceRow) -> Result<(), StateError> {
        let db_error = |source| self.database_error("store a trace", source);
        let _write_guard = self.lock_writes().await;
        let n_inserted = sqlx::query(INSERT_TRACE)
            .bind(trace.trace_id.as_str())
            .bind(trace.tenant_id.as_str())
            .bind(trace.created_at_ms)
            .bind(trace.body.as_str())
            .execute(&self.pool)
            .await
            .map_err(db_error)?
            .rows_affected();
        if n_inserted == 0 {
            return Err(StateError::DuplicateTrace { trace_id: trace.trace_id.clone() });
        }
        Ok(())
    }

    /// Stores one feedback entry durably.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn put_feedback(&self, feedback: &FeedbackRow) -> Result<(), StateError> {
        let db_error = |source| self.database_error("store feedback", source);
        let _write_guard = self.lock_writes().await;
        sqlx::query(INSERT_FEEDBACK)
            .bind(uuid::Uuid::new_v4().simple().to_string())
            .bind(feedback.trace_id.as_str())
            .bind(feedback.tenant_id.as_deref())
            .bind(feedback.signal.as_str())
            .bind(feedback.item_ids.as_str())
            .bind(feedback.comment.as_deref())
            .bind(feedback.received_at_ms)
            .bind(i64::from(feedback.trace_known))
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Every feedback entry for a trace, oldest first.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn feedback_for(&self, trace_id: &str) -> Result<Vec<FeedbackRow>, StateError> {
        let db_error = |source| self.database_error("read feedback", source);
        let rows = sqlx::query(SELECT_FEEDBACK)
            .bind(trace_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(|row| decode_feedback(row).map_err(db_error)).collect()
    }

    /// Every feedback entry received at or after `since_ms`, oldest first, at most `limit`.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn feedback_since(
        &self,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<FeedbackRow>, StateError> {
        let db_error = |source| self.database_error("read recent feedback", source);
        let rows = sqlx::query(SELECT_FEEDBACK_SINCE)
            .bind(since_ms)
            .bind(limit_to_i64(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(|row| decode_feedback(row).map_err(db_error)).collect()
    }

    /// Stores several traces in one durable transaction (group commit): one fsync for the batch
    /// instead of one per trace. Each trace's own outcome is returned in order; a duplicate id
    /// fails only that trace. When the transaction itself fails, every trace fails.
    ///
    /// # Errors
    ///
    /// The database failed; nothing of the batch was stored.
    pub async fn put_traces(
        &self,
        traces: &[TraceRow],
    ) -> Result<Vec<Result<(), StateError>>, StateError> {
        let db_error = |source| self.database_error("store traces", source);
        let _write_guard = self.lock_writes().await;
        if let Some(direct) = &self.direct {
            let traces = traces.to_vec();
            let capture_log = Arc::clone(&self.capture_log);
            return direct
                .write(move |connection| direct::put_traces(connection, &traces, &capture_log))
                .await;
        }
        let mut tx = self.begin_write().await.map_err(db_error)?;
        // Multi-row statements: a batch costs four round trips to the database however many
        // traces it carries. `RETURNING` names the rows that were new, so a duplicate id fails
        // only its own trace.
        let mut inserted: HashSet<String> = HashSet::with_capacity(traces.len());
        for chunk in traces.chunks(TRACE_ROWS_PER_STATEMENT) {
            let mut query =
                sqlx::query(upsert_sql(INSERT_TRACES, chunk.len(), 4, INSERT_TRACES_SUFFIX));
            for trace in chunk {
                query = query
                    .bind(trace.trace_id.as_str())
                    .bind(trace.tenant_id.as_str())
                    .bind(trace.created_at_ms)
                    .bind(trace.body.as_str());
            }
            for row in query.fetch_all(&mut *tx).await.map_err(db_error)? {
                inserted.insert(row.try_get("trace_id").map_err(db_error)?);
            }
        }
        let (outcomes, captures) = trace_outcomes(traces, inserted);
        self.insert_captures(&mut tx, &captures).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(outcomes)
    }

    /// Reads one trace by id.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn get_trace(&self, trace_id: &str) -> Result<Option<TraceRow>, StateError> {
        let db_error = |source| self.database_error("read a trace", source);
        let row = sqlx::query(SELECT_TRACE)
            .bind(trace_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.as_ref().map(decode_trace).transpose().map_err(db_error)
    }

    /// The `limit` most recent traces, newest first (ties broken by id, descending).
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn recent_traces(&self, limit: usize) -> Result<Vec<TraceRow>, StateError> {
        let db_error = |source| self.database_error("list recent traces", source);
        let limit = limit_to_i64(limit);
        let rows = sqlx::query(SELECT_RECENT_TRACES)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        let mut traces = Vec::with_capacity(rows.len());
        for row in &rows {
            traces.push(decode_trace(row).map_err(db_error)?);
        }
        Ok(traces)
    }

    /// Deletes every trace created before `cutoff_ms` and returns how many it deleted.
    ///
    /// # Errors
    ///
    /// The database failed; chunks deleted before the failure stay deleted.
    pub async fn prune_traces(&self, cutoff_ms: i64) -> Result<u64, StateError> {
        self.delete_in_chunks(DELETE_TRACES_BEFORE, cutoff_ms).await
    }

    /// The `limit` most recent capture steps, oldest first.
    ///
    /// # Errors
    ///
    /// The database failed or holds corrupt values.
    pub async fn recent_capture(&self, limit: usize) -> Result<Vec<CapturedStep>, StateError> {
        let db_error = |source| self.database_error("read the replay capture", source);
        let rows = sqlx::query(SELECT_RECENT_CAPTURE)
            .bind(limit_to_i64(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        let mut steps = Vec::with_capacity(rows.len());
        for row in rows.iter().rev() {
            let pre_generation: i64 = row.try_get("pre_generation").map_err(db_error)?;
            let generation: i64 = row.try_get("generation").map_err(db_error)?;
            steps.push(CapturedStep {
                sequence: row.try_get("sequence").map_err(db_error)?,
                row: CaptureRow {
                    step_type: row.try_get("step_type").map_err(db_error)?,
                    tenant_id: row.try_get("tenant_id").map_err(db_error)?,
                    captured_at_ms: row.try_get("captured_at_ms").map_err(db_error)?,
                    pre_generation: to_u64("pre_generation", pre_generation)?,
                    generation: to_u64("generation", generation)?,
                    status: row.try_get("status").map_err(db_error)?,
                    request: row.try_get("request").map_err(db_error)?,
                    body: row.try_get("body").map_err(db_error)?,
                },
            });
        }
        Ok(steps)
    }

    /// The `limit` newest change events processed at or before `generation`, newest first.
    ///
    /// # Errors
    ///
    /// The database failed or holds corrupt values.
    pub async fn processed_events_upto(
        &self,
        generation: u64,
        limit: usize,
    ) -> Result<Vec<ProcessedEvent>, StateError> {
        let db_error = |source| self.database_error("read processed events", source);
        let rows = sqlx::query(SELECT_EVENTS_UPTO)
            .bind(to_i64("generation", generation)?)
            .bind(limit_to_i64(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            let generation: i64 = row.try_get("generation").map_err(db_error)?;
            events.push(ProcessedEvent {
                source_event_id: row.try_get("source_event_id").map_err(db_error)?,
                generation: to_u64("generation", generation)?,
                fingerprint: row.try_get("fingerprint").map_err(db_error)?,
            });
        }
        Ok(events)
    }

    /// Seeds a fresh store from a primer: the runtime generation, scope generations and
    /// processed change events, in one transaction. Used for shadow sessions.
    ///
    /// # Errors
    ///
    /// The store already holds changes, or the database failed; then nothing was written.
    pub async fn seed(&self, primer: &Primer) -> Result<(), StateError> {
        let db_error = |source| self.database_error("seed from a primer", source);
        let _write_guard = self.lock_writes().await;
        let mut tx = self.begin_write().await.map_err(db_error)?;
        let current = read_generation(&mut tx).await.map_err(db_error)?;
        if current != 0 {
            return Err(StateError::NotFresh { generation: current });
        }
        sqlx::query(SET_GENERATION)
            .bind(to_i64("generation", primer.current_generation)?)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        for scope in &primer.scope_generations {
            sqlx::query(
                "INSERT INTO kyro_scope_generation \
                 (scope_key, generation, acknowledged_at_ms, change_trigger) VALUES ($1, $2, $3, $4)",
            )
            .bind(scope.key.as_str())
            .bind(to_i64("generation", scope.generation)?)
            .bind(scope.acknowledged_at_ms)
            .bind(scope.trigger.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        for event in &primer.processed_events {
            sqlx::query(INSERT_PROCESSED_EVENT)
                .bind(event.source_event_id.as_str())
                .bind(to_i64("generation", event.generation)?)
                .bind(event.fingerprint.as_str())
                .bind(0_i64)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    /// Deletes evidence past retention: traces and feedback received before their cutoffs,
    /// capture steps before theirs, and capture steps beyond the newest `max_capture_steps`.
    ///
    /// Rows go in chunks of [`PRUNE_CHUNK_ROWS`], each in a transaction of its own, so the
    /// serving writer waits for one chunk at most rather than for the whole pass: one
    /// transaction deleting ten seconds of evidence (50,000 capture steps at 5,000 retrieves/s)
    /// held SQLite's write lock for a quarter of a second.
    ///
    /// # Errors
    ///
    /// The database failed; chunks deleted before the failure stay deleted.
    pub async fn prune_evidence(
        &self,
        trace_cutoff_ms: i64,
        feedback_cutoff_ms: i64,
        capture_cutoff_ms: i64,
        max_capture_steps: usize,
    ) -> Result<Pruned, StateError> {
        let db_error = |source| self.database_error("prune evidence", source);
        let traces = self.delete_in_chunks(DELETE_TRACES_BEFORE, trace_cutoff_ms).await?;
        let feedback = self.delete_in_chunks(DELETE_FEEDBACK_BEFORE, feedback_cutoff_ms).await?;
        let mut capture_steps =
            self.delete_in_chunks(DELETE_CAPTURE_BEFORE, capture_cutoff_ms).await?;
        let newest: i64 = sqlx::query(SELECT_MAX_CAPTURE_SEQUENCE)
            .fetch_one(&self.pool)
            .await
            .and_then(|row| row.try_get("newest"))
            .map_err(db_error)?;
        let through = newest.saturating_sub(limit_to_i64(max_capture_steps));
        if through > 0 {
            capture_steps += self.delete_in_chunks(DELETE_CAPTURE_THROUGH, through).await?;
        }
        Ok(Pruned { traces, feedback, capture_steps })
    }

    /// Runs a chunked retention `DELETE` (`$1` the cutoff, `$2` the chunk size) until a chunk
    /// deletes less than a full chunk; returns the rows deleted.
    async fn delete_in_chunks(&self, sql: &'static str, cutoff: i64) -> Result<u64, StateError> {
        let db_error = |source| self.database_error("prune evidence", source);
        let mut deleted = 0;
        loop {
            let n_deleted = {
                let _write_guard = self.lock_writes().await;
                let mut tx = self.begin_write().await.map_err(db_error)?;
                let n_deleted = sqlx::query(sql)
                    .bind(cutoff)
                    .bind(limit_to_i64(PRUNE_CHUNK_ROWS))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?
                    .rows_affected();
                tx.commit().await.map_err(db_error)?;
                n_deleted
            };
            deleted += n_deleted;
            if n_deleted < PRUNE_CHUNK_ROWS as u64 {
                return Ok(deleted);
            }
            tokio::task::yield_now().await;
        }
    }

    /// How much evidence is stored.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn evidence_counts(&self) -> Result<EvidenceCounts, StateError> {
        let db_error = |source| self.database_error("count evidence", source);
        let row = sqlx::query(COUNT_EVIDENCE).fetch_one(&self.pool).await.map_err(db_error)?;
        let count = |name: &'static str| -> Result<u64, StateError> {
            let value: i64 = row.try_get(name).map_err(db_error)?;
            to_u64(name, value)
        };
        Ok(EvidenceCounts {
            traces: count("traces")?,
            feedback: count("feedback")?,
            capture_steps: count("capture_steps")?,
        })
    }

    /// Checks that the database answers, for health reporting.
    ///
    /// # Errors
    ///
    /// No connection could be acquired or the database did not answer.
    pub async fn ping(&self) -> Result<(), StateError> {
        let db_error = |source| self.database_error("ping", source);
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        conn.ping().await.map_err(db_error)
    }

    /// Closes every connection, waiting for in-flight calls to finish. Later calls fail.
    pub async fn close(&self) {
        if let Some(direct) = &self.direct {
            direct.close();
        }
        self.pool.close().await;
    }

    async fn open_sqlite(url: &str) -> Result<Self, StateError> {
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
        let direct = direct::Direct::open(sqlite_options.get_filename()).map_err(|source| {
            StateError::Sqlite { operation: "open the direct connections", source }
        })?;
        let mut store = Self::with_pool(pool, backend, location, Some(Mutex::new(()))).await?;
        store.direct = Some(direct);
        Ok(store)
    }

    async fn open_postgres(url: &str) -> Result<Self, StateError> {
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
        Self::with_pool(pool, backend, location, None).await
    }

    async fn with_pool(
        pool: AnyPool,
        backend: StateBackend,
        location: String,
        write_lock: Option<Mutex<()>>,
    ) -> Result<Self, StateError> {
        let last_sequence: i64 = sqlx::query(SELECT_LAST_CAPTURE_SEQUENCE)
            .fetch_one(&pool)
            .await
            .and_then(|row| row.try_get(0))
            .map_err(|source| StateError::Database {
                backend,
                operation: "read the capture sequence",
                source,
            })?;
        Ok(Self {
            pool,
            backend,
            location,
            write_lock,
            capture_log: Arc::new(direct::CaptureLog::new(last_sequence)),
            direct: None,
        })
    }

    /// Bounds the replay capture to its newest `max_steps` steps (0: no bound): every write of
    /// capture steps trims the oldest beyond it (`direct::trim_capture` on SQLite's writer,
    /// `insert_captures` on the pool). [`StateStore::prune_evidence`] enforces the bound it is
    /// given too, and the time-based retention.
    pub fn bound_capture(&self, max_steps: usize) {
        self.capture_log
            .max_steps
            .store(limit_to_i64(max_steps), std::sync::atomic::Ordering::Relaxed);
    }

    async fn insert_capture(
        &self,
        tx: &mut Transaction<'static, Any>,
        capture: &CaptureRow,
    ) -> Result<(), StateError> {
        self.insert_captures(tx, &[capture]).await
    }

    /// Inserts capture steps and trims the capture to its bound in the same transaction, as
    /// the SQLite writer does (`direct::trim_capture`).
    async fn insert_captures(
        &self,
        tx: &mut Transaction<'static, Any>,
        captures: &[&CaptureRow],
    ) -> Result<(), StateError> {
        let db_error = |source| self.database_error("record capture steps", source);
        for chunk in captures.chunks(CAPTURE_ROWS_PER_STATEMENT) {
            let mut query = sqlx::query(upsert_sql(INSERT_CAPTURE_ROWS, chunk.len(), 10, ""));
            for capture in chunk {
                query = bind_capture(query, capture, self.capture_log.next_sequence())?;
            }
            query.execute(&mut **tx).await.map_err(db_error)?;
        }
        if let Some((through, limit)) = self.capture_log.trim_window(captures.len()) {
            sqlx::query(DELETE_CAPTURE_THROUGH)
                .bind(through)
                .bind(limit)
                .execute(&mut **tx)
                .await
                .map_err(|source| self.database_error("trim the capture", source))?;
        }
        Ok(())
    }

    fn database_error(&self, operation: &'static str, source: sqlx::Error) -> StateError {
        StateError::Database { backend: self.backend, operation, source }
    }

    async fn lock_writes(&self) -> Option<MutexGuard<'_, ()>> {
        match &self.write_lock {
            Some(write_lock) => Some(write_lock.lock().await),
            None => None,
        }
    }

    /// Begins a transaction that will write. On SQLite `BEGIN IMMEDIATE` takes the write lock
    /// up front (waiting through `busy_timeout`), so a read never has to be upgraded to a write
    /// mid-transaction, which SQLite can only refuse.
    async fn begin_write(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.backend {
            StateBackend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            StateBackend::Postgres => self.pool.begin().await,
        }
    }

    /// Begins a read-only transaction whose statements all see one snapshot. SQLite's deferred
    /// transaction pins a WAL snapshot at its first read; PostgreSQL needs `REPEATABLE READ`
    /// for that (its default `READ COMMITTED` takes a new snapshot per statement).
    async fn begin_snapshot(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.backend {
            StateBackend::Sqlite => self.pool.begin().await,
            StateBackend::Postgres => {
                self.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await
            }
        }
    }
}

impl fmt::Debug for StateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateStore")
            .field("backend", &self.backend)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// The schema, embedded in the binary. The SQL runs unchanged on both backends.
fn migrator() -> Migrator {
    let mut migrator = Migrator::with_migrations(vec![
        Migration::new(
            1,
            "freshness ledger and trace store".into(),
            MigrationType::Simple,
            include_str!("../migrations/0001_state.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            "feedback".into(),
            MigrationType::Simple,
            include_str!("../migrations/0002_feedback.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            3,
            "replay capture".into(),
            MigrationType::Simple,
            include_str!("../migrations/0003_capture.sql").into_sql_str(),
            false,
        ),
    ]);
    // A name of our own, so a database shared with another sqlx application keeps both
    // histories apart.
    migrator.dangerous_set_table_name("kyro_state_migrations");
    migrator
}

/// The settings of every SQLite connection, pooled or direct: a commit is durable when it
/// returns (`synchronous = FULL` in WAL mode: an acknowledged change survives power loss, not
/// only a killed process), a locked file is waited for, and reads go through a memory map
/// instead of a read(2) per page (the ledger lookups on every retrieve are page reads of a
/// small, hot file).
const SQLITE_CONNECTION_PRAGMAS: [&str; 3] =
    ["PRAGMA synchronous = FULL", SQLITE_BUSY_TIMEOUT_PRAGMA, "PRAGMA mmap_size = 268435456"];

/// Applies [`SQLITE_CONNECTION_PRAGMAS`] to a pooled connection.
async fn configure_sqlite_connection(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    for pragma in SQLITE_CONNECTION_PRAGMAS {
        sqlx::query(pragma).execute(&mut *conn).await?;
    }
    Ok(())
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

type ConnectFuture<'c> = Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + 'c>>;

fn configure_pooled_sqlite_connection(
    conn: &mut AnyConnection,
    _metadata: PoolConnectionMetadata,
) -> ConnectFuture<'_> {
    Box::pin(configure_sqlite_connection(conn))
}

async fn read_generation(conn: &mut AnyConnection) -> Result<i64, sqlx::Error> {
    sqlx::query(SELECT_GENERATION).fetch_one(&mut *conn).await?.try_get(0)
}

/// A document change ready to bind: unsigned values range-checked, the flag as 0/1.
struct DocumentRow<'a> {
    key: &'a DocumentKey,
    revision: Option<&'a str>,
    watermark: Option<i64>,
    tombstone: i64,
    event_timestamp_ms: Option<i64>,
}

/// The scope rows of a change, one per key (the last trigger wins), in key order so that
/// concurrent appliers touch rows in the same order.
fn scope_rows(scope_changes: &[ScopeChange]) -> Vec<(&str, &str)> {
    let mut rows: BTreeMap<&str, &str> = BTreeMap::new();
    for scope_change in scope_changes {
        rows.insert(&scope_change.key, &scope_change.trigger);
    }
    rows.into_iter().collect()
}

/// The document rows of a change, one per document (the last entry wins), in key order.
fn document_rows(document_changes: &[DocumentChange]) -> Result<Vec<DocumentRow<'_>>, StateError> {
    let mut rows: BTreeMap<&DocumentKey, DocumentRow<'_>> = BTreeMap::new();
    for document_change in document_changes {
        let watermark = match document_change.watermark {
            Some(watermark) => Some(to_i64("watermark", watermark)?),
            None => None,
        };
        rows.insert(
            &document_change.key,
            DocumentRow {
                key: &document_change.key,
                revision: document_change.revision.as_deref(),
                watermark,
                tombstone: i64::from(document_change.tombstone),
                event_timestamp_ms: document_change.event_timestamp_ms,
            },
        );
    }
    Ok(rows.into_values().collect())
}

/// One row of [`freshness_lookup_sql`], decoded by either driver.
enum FreshnessRow {
    Generation(i64),
    Scope {
        key: String,
        generation: i64,
        acknowledged_at_ms: i64,
    },
    Document {
        key: DocumentKey,
        generation: i64,
        revision: Option<String>,
        watermark: Option<i64>,
        tombstone: i64,
        event_timestamp_ms: Option<i64>,
    },
}

/// The view of [`StateStore::read_freshness`] from the rows of one lookup: scope generations
/// and documents in the order they were asked for, those never recorded left out.
fn freshness_view(
    scope_keys: &[&String],
    documents: &[&DocumentKey],
    rows: Vec<FreshnessRow>,
) -> Result<FreshnessView, StateError> {
    let mut current_generation = None;
    let mut stored_scopes: HashMap<String, (u64, i64)> = HashMap::new();
    let mut stored_documents: HashMap<DocumentKey, DocumentState> = HashMap::new();
    for row in rows {
        match row {
            FreshnessRow::Generation(generation) => {
                current_generation = Some(to_u64("generation", generation)?);
            }
            FreshnessRow::Scope { key, generation, acknowledged_at_ms } => {
                stored_scopes.insert(key, (to_u64("generation", generation)?, acknowledged_at_ms));
            }
            FreshnessRow::Document {
                key,
                generation,
                revision,
                watermark,
                tombstone,
                event_timestamp_ms,
            } => {
                let document = DocumentState {
                    key: key.clone(),
                    generation: to_u64("generation", generation)?,
                    revision,
                    watermark: match watermark {
                        Some(watermark) => Some(to_u64("watermark", watermark)?),
                        None => None,
                    },
                    tombstone: tombstone != 0,
                    event_timestamp_ms,
                };
                stored_documents.insert(key, document);
            }
        }
    }
    let current_generation =
        current_generation.ok_or(StateError::Corrupt { field: "generation row", value: 0 })?;
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

/// Each trace's outcome once the ids in `inserted` were stored, and the capture steps to store
/// with them: only the first of several traces with one new id was stored.
fn trace_outcomes(
    traces: &[TraceRow],
    mut inserted: HashSet<String>,
) -> (Vec<Result<(), StateError>>, Vec<&CaptureRow>) {
    let mut outcomes = Vec::with_capacity(traces.len());
    let mut captures = Vec::with_capacity(traces.len());
    for trace in traces {
        if inserted.remove(&trace.trace_id) {
            captures.extend(trace.capture.as_ref());
            outcomes.push(Ok(()));
        } else {
            outcomes.push(Err(StateError::DuplicateTrace { trace_id: trace.trace_id.clone() }));
        }
    }
    (outcomes, captures)
}

/// The distinct event ids of a batch, in order.
fn event_ids(changes: &[ChangeInput]) -> Vec<&str> {
    let ids: Vec<&str> =
        changes.iter().filter_map(|change| change.source_event_id.as_deref()).collect();
    unique_in_order(&ids).into_iter().copied().collect()
}

/// `SELECT` of the processed events among `n_ids` event ids.
fn processed_events_lookup_sql(n_ids: usize) -> AssertSqlSafe<String> {
    in_list_sql(
        "SELECT source_event_id, generation, fingerprint FROM kyro_processed_event \
         WHERE source_event_id IN (",
        n_ids,
    )
}

/// `select` (ending in `IN (`) + `n` numbered placeholders + `)`.
fn in_list_sql(select: &str, n: usize) -> AssertSqlSafe<String> {
    let mut sql = String::from(select);
    push_placeholders(&mut sql, 1, n);
    sql.push(')');
    // Only static fragments and placeholder numbers: no input text reaches the SQL.
    AssertSqlSafe(sql)
}

/// What a batch of changes writes, decided from the generation before it (`base`) and the
/// events already processed (`known`): each change's outcome, the new generation, and the
/// rows, each scope and document once with its latest change.
struct BatchPlan<'c> {
    outcomes: Vec<ApplyOutcome>,
    generation: u64,
    /// `(source_event_id, generation, fingerprint, processed_at_ms)`.
    new_events: Vec<(&'c str, i64, &'c str, i64)>,
    /// `(scope_key, (generation, acknowledged_at_ms, change_trigger))`, in key order.
    scopes: Vec<(&'c str, (i64, i64, &'c str))>,
    /// `(generation, row)`, in key order.
    documents: Vec<(i64, &'c DocumentRow<'c>)>,
    captures: Vec<CaptureRow>,
}

/// Plans a batch with the outcomes applying its changes one by one would have: replays (also
/// of an earlier change in the same batch) are recognized, every other change gets the next
/// generation.
fn plan_batch<'c>(
    changes: &'c [ChangeInput],
    document_rows: &'c [Vec<DocumentRow<'c>>],
    base: u64,
    mut known: HashMap<String, (u64, String)>,
) -> Result<BatchPlan<'c>, StateError> {
    let mut generation = base;
    let mut outcomes = Vec::with_capacity(changes.len());
    let mut new_events = Vec::new();
    let mut scopes: BTreeMap<&str, (i64, i64, &str)> = BTreeMap::new();
    let mut documents: BTreeMap<&DocumentKey, (i64, &DocumentRow<'_>)> = BTreeMap::new();
    let mut captures = Vec::new();
    for (change, rows) in changes.iter().zip(document_rows) {
        let outcome = match change.source_event_id.as_deref().and_then(|id| known.get(id)) {
            Some((original, fingerprint)) if *fingerprint == change.fingerprint => {
                ApplyOutcome::Replayed { generation: *original }
            }
            Some((original, _)) => ApplyOutcome::Conflict { generation: *original },
            None => {
                generation += 1;
                ApplyOutcome::Applied { generation }
            }
        };
        if let ApplyOutcome::Applied { generation } = outcome {
            let value = to_i64("generation", generation)?;
            if let Some(id) = &change.source_event_id {
                known.insert(id.clone(), (generation, change.fingerprint.clone()));
                new_events.push((id.as_str(), value, change.fingerprint.as_str(), change.now_ms));
            }
            for (key, trigger) in scope_rows(&change.scope_keys) {
                scopes.insert(key, (value, change.now_ms, trigger));
            }
            for row in rows {
                documents.insert(row.key, (value, row));
            }
        }
        if let Some(capture) = &change.capture {
            let (status, pre_generation) = match outcome {
                ApplyOutcome::Applied { generation } => ("accepted", generation - 1),
                ApplyOutcome::Replayed { .. } => ("replayed", generation),
                ApplyOutcome::Conflict { .. } => ("rejected", generation),
            };
            captures.push(CaptureRow {
                generation: outcome.generation(),
                status: status.to_owned(),
                pre_generation,
                ..capture.clone()
            });
        }
        outcomes.push(outcome);
    }
    Ok(BatchPlan {
        outcomes,
        generation,
        new_events,
        scopes: scopes.into_iter().collect(),
        documents: documents.into_values().collect(),
        captures,
    })
}

type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>;

/// The capture columns that are not the row's own fields: a new step id, its sequence, and the
/// generations range-checked for the signed columns.
struct CaptureColumns {
    step_id: String,
    sequence: i64,
    pre_generation: i64,
    generation: i64,
}

impl CaptureColumns {
    fn new(capture: &CaptureRow, sequence: i64) -> Result<Self, StateError> {
        Ok(Self {
            step_id: uuid::Uuid::new_v4().simple().to_string(),
            sequence,
            pre_generation: to_i64("pre_generation", capture.pre_generation)?,
            generation: to_i64("generation", capture.generation)?,
        })
    }
}

/// Binds one capture row's ten columns, in `INSERT_CAPTURE_ROWS` order.
fn bind_capture<'q>(
    query: AnyQuery<'q>,
    capture: &'q CaptureRow,
    sequence: i64,
) -> Result<AnyQuery<'q>, StateError> {
    let columns = CaptureColumns::new(capture, sequence)?;
    Ok(query
        .bind(columns.step_id)
        .bind(columns.sequence)
        .bind(capture.captured_at_ms)
        .bind(capture.tenant_id.as_deref())
        .bind(capture.step_type.as_str())
        .bind(columns.pre_generation)
        .bind(columns.generation)
        .bind(capture.status.as_str())
        .bind(capture.request.as_str())
        .bind(capture.body.as_str()))
}

/// `prefix` + `n_rows` groups of `n_columns` numbered placeholders + `suffix`.
fn upsert_sql(
    prefix: &str,
    n_rows: usize,
    n_columns: usize,
    suffix: &str,
) -> AssertSqlSafe<String> {
    let mut sql = String::with_capacity(prefix.len() + suffix.len() + n_rows * n_columns * 6);
    sql.push_str(prefix);
    for row_idx in 0..n_rows {
        if row_idx > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        push_placeholders(&mut sql, row_idx * n_columns + 1, n_columns);
        sql.push(')');
    }
    sql.push_str(suffix);
    // Only static fragments and placeholder numbers: no input text reaches the SQL.
    AssertSqlSafe(sql)
}

/// One `SELECT` of the current generation (`kind` 0), the stored generations of `n_keys` scope
/// keys (`kind` 1, placeholders first) and the stored facts of `n_documents` documents
/// (`kind` 2, three placeholders each), as one `UNION ALL` with aligned, explicitly typed
/// columns.
fn freshness_lookup_sql(n_keys: usize, n_documents: usize) -> AssertSqlSafe<String> {
    let mut sql = String::from(
        "SELECT CAST(0 AS BIGINT) AS kind, value AS generation, \
         CAST(NULL AS TEXT) AS scope_key, CAST(NULL AS BIGINT) AS acknowledged_at_ms, \
         CAST(NULL AS TEXT) AS tenant_id, CAST(NULL AS TEXT) AS namespace, \
         CAST(NULL AS TEXT) AS doc_id, CAST(NULL AS TEXT) AS revision, \
         CAST(NULL AS BIGINT) AS watermark, CAST(0 AS BIGINT) AS tombstone, \
         CAST(NULL AS BIGINT) AS event_timestamp_ms FROM kyro_generation WHERE id = 1",
    );
    if n_keys > 0 {
        sql.push_str(
            " UNION ALL SELECT CAST(1 AS BIGINT), generation, scope_key, acknowledged_at_ms, \
             NULL, NULL, NULL, NULL, NULL, CAST(0 AS BIGINT), NULL \
             FROM kyro_scope_generation WHERE scope_key IN (",
        );
        push_placeholders(&mut sql, 1, n_keys);
        sql.push(')');
    }
    if n_documents > 0 {
        sql.push_str(
            " UNION ALL SELECT CAST(2 AS BIGINT), generation, NULL, NULL, tenant_id, namespace, \
             doc_id, revision, watermark, tombstone, event_timestamp_ms \
             FROM kyro_document_state WHERE ",
        );
        for document_idx in 0..n_documents {
            if document_idx > 0 {
                sql.push_str(" OR ");
            }
            let first = n_keys + document_idx * 3 + 1;
            sql.push_str(&format!(
                "(tenant_id = ${first} AND namespace = ${} AND doc_id = ${})",
                first + 1,
                first + 2
            ));
        }
    }
    // Only static fragments and placeholder numbers: no input text reaches the SQL.
    AssertSqlSafe(sql)
}

/// `SELECT` of the stored generations of `n_keys` scope keys.
fn scope_lookup_sql(n_keys: usize) -> AssertSqlSafe<String> {
    in_list_sql(
        "SELECT scope_key, generation, acknowledged_at_ms FROM kyro_scope_generation \
         WHERE scope_key IN (",
        n_keys,
    )
}

/// `SELECT` of the stored facts of `n_keys` documents, three placeholders per key. An `OR` of
/// equalities rather than a row-value `IN` list, which SQLite accepts only with a subquery.
fn document_lookup_sql(n_keys: usize) -> AssertSqlSafe<String> {
    let mut sql = String::from(
        "SELECT tenant_id, namespace, doc_id, generation, revision, watermark, tombstone, \
         event_timestamp_ms FROM kyro_document_state WHERE ",
    );
    for key_idx in 0..n_keys {
        if key_idx > 0 {
            sql.push_str(" OR ");
        }
        let first = key_idx * 3 + 1;
        sql.push_str("(tenant_id = $");
        sql.push_str(&first.to_string());
        sql.push_str(" AND namespace = $");
        sql.push_str(&(first + 1).to_string());
        sql.push_str(" AND doc_id = $");
        sql.push_str(&(first + 2).to_string());
        sql.push(')');
    }
    // Only static fragments and placeholder numbers: no input text reaches the SQL.
    AssertSqlSafe(sql)
}

/// Appends `$first, $first+1, ...` (`n` placeholders). Both backends bind `$N` by number.
fn push_placeholders(sql: &mut String, first: usize, n: usize) {
    for placeholder_idx in 0..n {
        if placeholder_idx > 0 {
            sql.push_str(", ");
        }
        sql.push('$');
        sql.push_str(&(first + placeholder_idx).to_string());
    }
}

fn unique_in_order<T: Ord>(items: &[T]) -> Vec<&T> {
    let mut seen = BTreeSet::new();
    let mut unique = Vec::with_capacity(items.len());
    for item in items {
        if seen.insert(item) {
            unique.push(item);
        }
    }
    unique
}

fn decode_document(
    row: &AnyRow,
    db_error: impl Fn(sqlx::Error) -> StateError,
) -> Result<DocumentState, StateError> {
    let generation: i64 = row.try_get("generation").map_err(&db_error)?;
    let watermark: Option<i64> = row.try_get("watermark").map_err(&db_error)?;
    let tombstone: i64 = row.try_get("tombstone").map_err(&db_error)?;
    Ok(DocumentState {
        key: DocumentKey {
            tenant_id: row.try_get("tenant_id").map_err(&db_error)?,
            namespace: row.try_get("namespace").map_err(&db_error)?,
            doc_id: row.try_get("doc_id").map_err(&db_error)?,
        },
        generation: to_u64("generation", generation)?,
        revision: row.try_get("revision").map_err(&db_error)?,
        watermark: match watermark {
            Some(watermark) => Some(to_u64("watermark", watermark)?),
            None => None,
        },
        tombstone: tombstone != 0,
        event_timestamp_ms: row.try_get("event_timestamp_ms").map_err(&db_error)?,
    })
}

fn decode_feedback(row: &AnyRow) -> Result<FeedbackRow, sqlx::Error> {
    Ok(FeedbackRow {
        trace_id: row.try_get("trace_id")?,
        tenant_id: row.try_get("tenant_id")?,
        signal: row.try_get("signal")?,
        item_ids: row.try_get("item_ids")?,
        comment: row.try_get("comment")?,
        received_at_ms: row.try_get("received_at_ms")?,
        trace_known: row.try_get::<i64, _>("trace_known")? != 0,
    })
}

fn decode_trace(row: &AnyRow) -> Result<TraceRow, sqlx::Error> {
    Ok(TraceRow {
        trace_id: row.try_get("trace_id")?,
        tenant_id: row.try_get("tenant_id")?,
        created_at_ms: row.try_get("created_at_ms")?,
        body: row.try_get("body")?,
        capture: None,
    })
}

fn to_u64(field: &'static str, value: i64) -> Result<u64, StateError> {
    u64::try_from(value).map_err(|_| StateError::Corrupt { field, value })
}

fn to_i64(field: &'static str, value: u64) -> Result<i64, StateError> {
    i64::try_from(value).map_err(|_| StateError::OutOfRange { field, value })
}

/// A row limit as SQL `LIMIT`; anything beyond `i64::MAX` means "all rows" anyway.
fn limit_to_i64(limit: usize) -> i64 {
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

/// Classifies an error of SQLite's direct path as [`classify`] does the pool's.
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

/// The scheme of `url` when it has a plausible one (`mysql` in `mysql://...`), and nothing
/// else: whatever follows may hold credentials.
fn url_scheme(url: &str) -> Option<&str> {
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
