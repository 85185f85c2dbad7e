//! The rusqlite driver: SQLite's serving paths and writes without a thread hop per statement.
//!
//! sqlx runs every SQLite connection on a worker thread of its own and sends each statement
//! there and each row back, so a retrieve's ledger read and its trace commit cost several
//! wake-ups and context switches; on a two-core machine that was most of a reuse hit's time.
//! This driver executes the same planned statements on plain connections:
//!
//! - **reads** of the serving path (the freshness read) run on the calling thread, on a small
//!   pool of connections. A WAL reader never waits for the writer, so this is a few
//!   microseconds of page reads from the memory map, not a blocking wait;
//! - **writes** (every write of a SQLite store) run on one writer thread that owns its
//!   connection: a whole group-commit batch is one hand-off there and one back, whatever the
//!   number of statements, and this process's writers never meet in SQLite's busy handler.
//!
//! Other processes' writers are serialized with this one by SQLite's own locking.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};

use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};
use rusqlite::{CachedStatement, Connection, TransactionBehavior};

use crate::plan::Write;
use crate::statement::{Column, Param, Query, Row, Statement, Value};
use crate::{Result, StateError};

/// Idle read connections kept for reuse; more are opened when requests overlap, and closed.
const MAX_IDLE_READERS: usize = 8;
/// Prepared statements cached per connection (batch sizes give statements of several shapes).
const STATEMENT_CACHE: usize = 64;
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// The direct connections to one SQLite state file.
pub(crate) struct Direct {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    /// The writer thread's queue; `None` once closed.
    writer: Mutex<Option<mpsc::Sender<Job>>>,
}

impl Direct {
    /// Opens a reader and starts the writer thread on the file at `path`, which must exist
    /// and be migrated.
    pub(crate) fn open(path: &Path) -> Result<Self, rusqlite::Error> {
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
            .map_err(|err| rusqlite::Error::ToSqlConversionFailure(Box::new(err)))?;
        Ok(Self {
            path: path.to_owned(),
            readers: Mutex::new(vec![reader]),
            writer: Mutex::new(Some(sender)),
        })
    }

    /// Runs `queries` on a read connection, on the calling thread: several in one deferred
    /// transaction, which pins one WAL snapshot at its first read.
    pub(crate) fn read(
        &self,
        operation: &'static str,
        queries: Vec<Query<'_>>,
    ) -> Result<Vec<Vec<Row>>> {
        self.with_reader(|connection| {
            let db_error = sqlite_error(operation);
            if queries.len() == 1 {
                return queries
                    .into_iter()
                    .map(|query| fetch(connection, query, &db_error))
                    .collect();
            }
            let tx = connection.transaction().map_err(&db_error)?;
            let rows = queries.into_iter().map(|query| fetch(&tx, query, &db_error)).collect();
            tx.commit().map_err(&db_error)?;
            rows
        })
    }

    /// Runs `read` on a pooled read connection, on the calling thread.
    pub(crate) fn with_reader<T>(
        &self,
        read: impl FnOnce(&mut Connection) -> Result<T>,
    ) -> Result<T> {
        if self.writer.lock().map_or(true, |writer| writer.is_none()) {
            return Err(StateError::Closed);
        }
        let idle = self.readers.lock().ok().and_then(|mut readers| readers.pop());
        let mut connection = match idle {
            Some(connection) => connection,
            None => open_connection(&self.path)
                .map_err(|source| StateError::Sqlite { operation: "open a reader", source })?,
        };
        let result = read(&mut connection);
        if let Ok(mut readers) = self.readers.lock()
            && readers.len() < MAX_IDLE_READERS
        {
            readers.push(connection);
        }
        result
    }

    /// Runs a planned write on the writer thread and waits for its answer.
    pub(crate) async fn write<W>(&self, write: W) -> Result<W::Output>
    where
        W: Write + Send + 'static,
        W::Output: Send + 'static,
    {
        self.on_writer(move |connection| run_write(connection, &write)).await
    }

    /// Runs `job` on the writer thread and waits for its answer.
    pub(crate) async fn on_writer<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let sender = self.writer.lock().ok().and_then(|writer| writer.clone());
        let sender = sender.ok_or(StateError::Closed)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |connection| {
            let _ = reply.send(job(connection));
        });
        sender.send(job).map_err(|_| StateError::Closed)?;
        answer.await.map_err(|_| StateError::Closed)?
    }

    /// Takes the pruner's lock: an exclusive lock on `<database>-pruner` next to the file, held
    /// while the returned file is open, or `None` when another store (in this process or
    /// another) holds it. A process that dies releases it.
    pub(crate) fn try_lock_pruner(&self) -> Result<Option<std::fs::File>> {
        let file_error = |source| StateError::File { operation: "take the pruner lock", source };
        let mut path = self.path.clone().into_os_string();
        path.push("-pruner");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(file_error)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(source)) => Err(file_error(source)),
        }
    }

    /// Stops the writer thread once its queue is drained and closes the idle readers; later
    /// calls fail with [`StateError::Closed`].
    pub(crate) fn close(&self) {
        if let Ok(mut writer) = self.writer.lock() {
            writer.take();
        }
        if let Ok(mut readers) = self.readers.lock() {
            readers.clear();
        }
    }
}

/// Runs a planned write as one `BEGIN IMMEDIATE` transaction: its reads, its plan, its
/// statements, commit.
fn run_write<W: Write>(connection: &mut Connection, write: &W) -> Result<W::Output> {
    let db_error = sqlite_error(write.operation());
    let reads = write.reads()?;
    let tx =
        connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&db_error)?;
    let mut rows = Vec::with_capacity(reads.len());
    for query in reads {
        rows.push(fetch(&tx, query, &db_error)?);
    }
    let planned = write.plan(rows)?;
    for statement in &planned.statements {
        execute(&tx, statement).map_err(&db_error)?;
    }
    tx.commit().map_err(&db_error)?;
    Ok(planned.output)
}

/// Opens a connection with the store's settings (`crate::open::SQLITE_CONNECTION_PRAGMAS`).
fn open_connection(path: &Path) -> Result<Connection, rusqlite::Error> {
    let connection = Connection::open(path)?;
    for pragma in crate::open::SQLITE_CONNECTION_PRAGMAS {
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

fn execute(connection: &Connection, statement: &Statement<'_>) -> rusqlite::Result<usize> {
    prepare(connection, &statement.sql)?
        .execute(rusqlite::params_from_iter(statement.params.iter()))
}

/// Runs one query and decodes its rows as the query declares.
fn fetch(
    connection: &Connection,
    query: Query<'_>,
    db_error: &impl Fn(rusqlite::Error) -> StateError,
) -> Result<Vec<Row>> {
    let mut statement = prepare(connection, &query.statement.sql).map_err(db_error)?;
    let params = rusqlite::params_from_iter(query.statement.params.iter());
    let mut rows = statement.query(params).map_err(db_error)?;
    let mut decoded = Vec::new();
    while let Some(row) = rows.next().map_err(db_error)? {
        decoded.push(decode(row, query.columns).map_err(db_error)?);
    }
    Ok(decoded)
}

fn decode(row: &rusqlite::Row<'_>, columns: &[Column]) -> rusqlite::Result<Row> {
    let mut values = Vec::with_capacity(columns.len());
    for (column_idx, column) in columns.iter().enumerate() {
        values.push(match column {
            Column::Int => Value::Int(row.get(column_idx)?),
            Column::NullableInt => {
                row.get::<_, Option<i64>>(column_idx)?.map_or(Value::Null, Value::Int)
            }
            Column::Text => Value::Text(row.get(column_idx)?),
            Column::NullableText => {
                row.get::<_, Option<String>>(column_idx)?.map_or(Value::Null, Value::Text)
            }
        });
    }
    Ok(Row(values))
}

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Self::Int(Some(value)) => ToSqlOutput::Owned(rusqlite::types::Value::Integer(*value)),
            Self::Text(Some(text)) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Self::Int(None) | Self::Text(None) => ToSqlOutput::Owned(rusqlite::types::Value::Null),
        })
    }
}

fn sqlite_error(operation: &'static str) -> impl Fn(rusqlite::Error) -> StateError {
    move |source| StateError::Sqlite { operation, source }
}
