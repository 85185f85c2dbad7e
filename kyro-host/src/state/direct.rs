//! SQLite's serving paths without a thread hop per statement.
//!
//! sqlx runs every SQLite connection on a worker thread of its own and sends each statement
//! there and each row back, so a retrieve's ledger read and its trace commit cost several
//! wake-ups and context switches; on a two-core machine that was most of a reuse hit's time.
//! This module serves the paths every request takes with the same SQL on plain connections:
//!
//! - **reads** (`read_freshness`) run on the calling thread, on a small pool of connections. A
//!   WAL reader never waits for the writer, so this is a few microseconds of page reads from
//!   the memory map, not a blocking wait;
//! - **writes** (traces with their capture steps, and ledger changes) run on one writer thread
//!   that owns its connection: a whole group-commit batch is one hand-off there and one back,
//!   whatever the number of statements.
//!
//! Everything else (migrations, evidence reports, seeding, pruning) stays on the sqlx pool.
//! Both open the same file with the same pragmas; the store's write lock keeps this process's
//! writers in turn, and SQLite's own locking serializes them with other processes.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, mpsc};

use rusqlite::types::ToSql;
use rusqlite::{CachedStatement, Connection, Row, TransactionBehavior};

use super::{
    ApplyOutcome, CaptureRow, ChangeInput, DocumentKey, FreshnessRow, StateError, TraceRow,
    plan_batch, to_i64, to_u64,
};

/// Idle read connections kept for reuse; more are opened when requests overlap, and closed.
const MAX_IDLE_READERS: usize = 8;
/// Prepared statements cached per connection (batch sizes give statements of several shapes).
const STATEMENT_CACHE: usize = 64;
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// The direct connections to one SQLite state file.
pub(super) struct Direct {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    /// The writer thread's queue; `None` once closed.
    writer: Mutex<Option<mpsc::Sender<Job>>>,
}

impl Direct {
    /// Opens a reader and starts the writer thread on the file at `path`, which must exist
    /// and be migrated.
    pub(super) fn open(path: &Path) -> Result<Self, rusqlite::Error> {
        let reader = open_connection(path)?;
        let mut connection = open_connection(path)?;
        let (sender, jobs) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("kyro-state-w".to_owned())
            .spawn(move || {
                while let Ok(job) = jobs.recv() {
                    // A job answers through its own channel; a panic in it drops that channel,
                    // which its caller sees as a stopped writer, and the thread carries on.
                    let _ = catch_unwind(AssertUnwindSafe(|| job(&mut connection)));
                }
            })
            .map_err(thread_error)?;
        Ok(Self {
            path: path.to_owned(),
            readers: Mutex::new(vec![reader]),
            writer: Mutex::new(Some(sender)),
        })
    }

    /// Runs `read` on a read connection, on the calling thread.
    pub(super) fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        if self.writer.lock().map_or(true, |writer| writer.is_none()) {
            return Err(StateError::Closed);
        }
        let idle = self.readers.lock().ok().and_then(|mut readers| readers.pop());
        let connection = match idle {
            Some(connection) => connection,
            None => open_connection(&self.path)
                .map_err(|source| StateError::Sqlite { operation: "open a reader", source })?,
        };
        let result = read(&connection);
        if let Ok(mut readers) = self.readers.lock()
            && readers.len() < MAX_IDLE_READERS
        {
            readers.push(connection);
        }
        result
    }

    /// Runs `write` on the writer thread and waits for its answer.
    pub(super) async fn write<T: Send + 'static>(
        &self,
        write: impl FnOnce(&mut Connection) -> Result<T, StateError> + Send + 'static,
    ) -> Result<T, StateError> {
        let sender = self.writer.lock().ok().and_then(|writer| writer.clone());
        let sender = sender.ok_or(StateError::Closed)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |connection| {
            let _ = reply.send(write(connection));
        });
        sender.send(job).map_err(|_| StateError::Closed)?;
        answer.await.map_err(|_| StateError::Closed)?
    }

    /// `(journal_mode, synchronous, busy_timeout)` of the writer's and a reader's connection.
    #[cfg(test)]
    pub(super) async fn settings(&self) -> Result<[(String, i64, i64); 2], StateError> {
        fn settings(connection: &Connection) -> Result<(String, i64, i64), StateError> {
            let pragma = |name: &str| format!("PRAGMA {name}");
            let db_error = sqlite_error("read the settings");
            Ok((
                connection
                    .query_row(&pragma("journal_mode"), [], |row| row.get(0))
                    .map_err(&db_error)?,
                connection
                    .query_row(&pragma("synchronous"), [], |row| row.get(0))
                    .map_err(&db_error)?,
                connection
                    .query_row(&pragma("busy_timeout"), [], |row| row.get(0))
                    .map_err(&db_error)?,
            ))
        }
        let writer = self.write(|connection| settings(connection)).await?;
        let reader = self.read(settings)?;
        Ok([writer, reader])
    }

    /// Stops the writer thread once its queue is drained and closes the idle readers; later
    /// calls fail with [`StateError::Closed`].
    pub(super) fn close(&self) {
        if let Ok(mut writer) = self.writer.lock() {
            writer.take();
        }
        if let Ok(mut readers) = self.readers.lock() {
            readers.clear();
        }
    }
}

fn thread_error(err: std::io::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(err))
}

fn open_connection(path: &Path) -> Result<Connection, rusqlite::Error> {
    let connection = Connection::open(path)?;
    for pragma in super::SQLITE_CONNECTION_PRAGMAS {
        // `PRAGMA mmap_size = N` answers with a row; `execute_batch` discards it.
        connection.execute_batch(pragma)?;
    }
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(connection)
}

/// A cached statement for `sql`, whose `$N` placeholders must be numbered in order of first
/// appearance: parameters are bound by position, and SQLite numbers `$N` by appearance.
fn prepare<'c>(connection: &'c Connection, sql: &str) -> rusqlite::Result<CachedStatement<'c>> {
    let statement = connection.prepare_cached(sql)?;
    debug_assert!(
        (1..=statement.parameter_count())
            .all(|idx| statement.parameter_name(idx) == Some(format!("${idx}").as_str())),
        "placeholders out of order in {sql}"
    );
    Ok(statement)
}

fn sqlite_error(operation: &'static str) -> impl Fn(rusqlite::Error) -> StateError {
    move |source| StateError::Sqlite { operation, source }
}

/// The rows of [`super::freshness_lookup_sql`] for these keys and documents.
pub(super) fn freshness_rows(
    connection: &Connection,
    scope_keys: &[&String],
    documents: &[&DocumentKey],
) -> Result<Vec<FreshnessRow>, StateError> {
    let db_error = sqlite_error("read freshness");
    let sql = super::freshness_lookup_sql(scope_keys.len(), documents.len());
    let mut statement = prepare(connection, &sql.0).map_err(&db_error)?;
    let mut params: Vec<&dyn ToSql> = Vec::with_capacity(scope_keys.len() + documents.len() * 3);
    params.extend(scope_keys.iter().map(|key| *key as &dyn ToSql));
    for key in documents {
        params.extend([&key.tenant_id as &dyn ToSql, &key.namespace, &key.doc_id]);
    }
    let mut rows = statement.query(params.as_slice()).map_err(&db_error)?;
    let mut decoded = Vec::new();
    while let Some(row) = rows.next().map_err(&db_error)? {
        decoded.push(decode_freshness_row(row).map_err(&db_error)?);
    }
    Ok(decoded)
}

fn decode_freshness_row(row: &Row<'_>) -> rusqlite::Result<FreshnessRow> {
    freshness_row!(row, get)
}

/// Stores a batch of traces and the capture steps of those that were new, in one
/// transaction; as [`super::StateStore::put_traces`].
pub(super) fn put_traces(
    connection: &mut Connection,
    traces: &[TraceRow],
    capture_log: &CaptureLog,
) -> Result<Vec<Result<(), StateError>>, StateError> {
    let db_error = sqlite_error("store traces");
    let tx =
        connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&db_error)?;
    let mut inserted = std::collections::HashSet::with_capacity(traces.len());
    for chunk in traces.chunks(super::TRACE_ROWS_PER_STATEMENT) {
        let sql =
            super::upsert_sql(super::INSERT_TRACES, chunk.len(), 4, super::INSERT_TRACES_SUFFIX);
        let mut statement = prepare(&tx, &sql.0).map_err(&db_error)?;
        let mut params: Vec<&dyn ToSql> = Vec::with_capacity(chunk.len() * 4);
        for trace in chunk {
            params.extend([
                &trace.trace_id as &dyn ToSql,
                &trace.tenant_id,
                &trace.created_at_ms,
                &trace.body,
            ]);
        }
        let mut rows = statement.query(params.as_slice()).map_err(&db_error)?;
        while let Some(row) = rows.next().map_err(&db_error)? {
            inserted.insert(row.get::<_, String>(0).map_err(&db_error)?);
        }
    }
    let (outcomes, captures) = super::trace_outcomes(traces, inserted);
    insert_captures(&tx, &captures, capture_log)?;
    tx.commit().map_err(&db_error)?;
    Ok(outcomes)
}

fn insert_captures(
    connection: &Connection,
    captures: &[&CaptureRow],
    capture_log: &CaptureLog,
) -> Result<(), StateError> {
    let db_error = sqlite_error("record capture steps");
    for chunk in captures.chunks(super::CAPTURE_ROWS_PER_STATEMENT) {
        let sql = super::upsert_sql(super::INSERT_CAPTURE_ROWS, chunk.len(), 10, "");
        let mut statement = prepare(connection, &sql.0).map_err(&db_error)?;
        let columns = chunk
            .iter()
            .map(|capture| super::CaptureColumns::new(capture, capture_log.next_sequence()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut params: Vec<&dyn ToSql> = Vec::with_capacity(chunk.len() * 10);
        for (capture, columns) in chunk.iter().zip(&columns) {
            params.extend([
                &columns.step_id as &dyn ToSql,
                &columns.sequence,
                &capture.captured_at_ms,
                &capture.tenant_id,
                &capture.step_type,
                &columns.pre_generation,
                &columns.generation,
                &capture.status,
                &capture.request,
                &capture.body,
            ]);
        }
        statement.execute(params.as_slice()).map_err(&db_error)?;
    }
    trim_capture(connection, captures.len(), capture_log)
}

/// Deletes the oldest capture steps beyond the bound, at most twice as many as the batch just
/// added, in the batch's own transaction: the capture stays at its bound under any write load
/// (a backlog shrinks by one batch's worth per batch) without a transaction and a sync of its
/// own. The ten-second retention pass then finds nothing beyond the bound on this path.
fn trim_capture(
    connection: &Connection,
    n_added: usize,
    capture_log: &CaptureLog,
) -> Result<(), StateError> {
    if let Some((through, limit)) = capture_log.trim_window(n_added) {
        execute(connection, super::DELETE_CAPTURE_THROUGH, &[&through, &limit])
            .map_err(sqlite_error("trim the capture"))?;
    }
    Ok(())
}

/// Applies a batch of changes in one transaction; as [`super::StateStore::apply_changes`].
pub(super) fn apply_changes(
    connection: &mut Connection,
    changes: &[ChangeInput],
    capture_log: &CaptureLog,
) -> Result<Vec<ApplyOutcome>, StateError> {
    let db_error = sqlite_error("apply changes");
    // Range checks first: nothing is written when any change is out of range.
    let document_rows = changes
        .iter()
        .map(|change| super::document_rows(&change.documents))
        .collect::<Result<Vec<_>, _>>()?;
    let tx =
        connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&db_error)?;
    let base: i64 = prepare(&tx, super::SELECT_GENERATION)
        .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
        .map_err(&db_error)?;
    let base = to_u64("generation", base)?;

    let event_ids = super::event_ids(changes);
    let mut known = std::collections::HashMap::new();
    for chunk in event_ids.chunks(super::SCOPE_KEYS_PER_LOOKUP) {
        let sql = super::processed_events_lookup_sql(chunk.len());
        let mut statement = prepare(&tx, &sql.0).map_err(&db_error)?;
        let params: Vec<&dyn ToSql> = chunk.iter().map(|id| id as &dyn ToSql).collect();
        let mut rows = statement.query(params.as_slice()).map_err(&db_error)?;
        while let Some(row) = rows.next().map_err(&db_error)? {
            let generation: i64 = row.get("generation").map_err(&db_error)?;
            known.insert(
                row.get::<_, String>("source_event_id").map_err(&db_error)?,
                (to_u64("generation", generation)?, row.get("fingerprint").map_err(&db_error)?),
            );
        }
    }

    let plan = plan_batch(changes, &document_rows, base, known)?;
    if plan.generation > base {
        let generation = to_i64("generation", plan.generation)?;
        prepare(&tx, super::SET_GENERATION)
            .and_then(|mut statement| statement.execute([generation]))
            .map_err(&db_error)?;
    }
    for chunk in plan.new_events.chunks(super::SCOPE_ROWS_PER_STATEMENT) {
        let sql = super::upsert_sql(super::INSERT_PROCESSED_EVENTS, chunk.len(), 4, "");
        let mut params: Vec<&dyn ToSql> = Vec::with_capacity(chunk.len() * 4);
        for (id, generation, fingerprint, now_ms) in chunk {
            params.extend([id as &dyn ToSql, generation, fingerprint, now_ms]);
        }
        execute(&tx, &sql.0, &params).map_err(&db_error)?;
    }
    for chunk in plan.scopes.chunks(super::SCOPE_ROWS_PER_STATEMENT) {
        let sql =
            super::upsert_sql(super::UPSERT_SCOPES, chunk.len(), 4, super::UPSERT_SCOPES_SUFFIX);
        let mut params: Vec<&dyn ToSql> = Vec::with_capacity(chunk.len() * 4);
        for (key, (generation, now_ms, trigger)) in chunk {
            params.extend([key as &dyn ToSql, generation, now_ms, trigger]);
        }
        execute(&tx, &sql.0, &params).map_err(&db_error)?;
    }
    for chunk in plan.documents.chunks(super::DOCUMENT_ROWS_PER_STATEMENT) {
        let sql = super::upsert_sql(
            super::UPSERT_DOCUMENTS,
            chunk.len(),
            8,
            super::UPSERT_DOCUMENTS_SUFFIX,
        );
        let mut params: Vec<&dyn ToSql> = Vec::with_capacity(chunk.len() * 8);
        for (generation, row) in chunk {
            params.extend([
                &row.key.tenant_id as &dyn ToSql,
                &row.key.namespace,
                &row.key.doc_id,
                generation,
                &row.revision,
                &row.watermark,
                &row.tombstone,
                &row.event_timestamp_ms,
            ]);
        }
        execute(&tx, &sql.0, &params).map_err(&db_error)?;
    }
    let captures: Vec<&CaptureRow> = plan.captures.iter().collect();
    insert_captures(&tx, &captures, capture_log)?;
    tx.commit().map_err(&db_error)?;
    Ok(plan.outcomes)
}

fn execute(connection: &Connection, sql: &str, params: &[&dyn ToSql]) -> rusqlite::Result<usize> {
    prepare(connection, sql)?.execute(params)
}

/// The capture's sequence counter and its bound, shared with jobs on the writer thread.
#[derive(Debug, Default)]
pub(super) struct CaptureLog {
    /// The last sequence this host allocated.
    pub(super) sequence: AtomicI64,
    /// How many steps the capture keeps at most; 0 for no bound.
    pub(super) max_steps: AtomicI64,
}

impl CaptureLog {
    /// A log whose last allocated sequence is `last_sequence`, with no bound yet.
    pub(super) fn new(last_sequence: i64) -> Self {
        Self { sequence: AtomicI64::new(last_sequence), max_steps: AtomicI64::new(0) }
    }

    /// Allocates the next capture sequence.
    pub(super) fn next_sequence(&self) -> i64 {
        self.sequence.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// After `n_added` steps: the sequence through which steps are beyond the bound, and how
    /// many of them to delete now (twice the batch, so a backlog shrinks), or `None`.
    pub(super) fn trim_window(&self, n_added: usize) -> Option<(i64, i64)> {
        let max_steps = self.max_steps.load(Ordering::Relaxed);
        if n_added == 0 || max_steps <= 0 {
            return None;
        }
        let through = self.sequence.load(Ordering::Relaxed).saturating_sub(max_steps);
        let limit = i64::try_from(n_added.saturating_mul(2)).unwrap_or(i64::MAX);
        (through > 0).then_some((through, limit))
    }
}
