//! The sqlx driver: executes planned statements over sqlx's `Any` pool. It serves every path
//! on PostgreSQL, and on SQLite the paths no request waits on (evidence reads, primers,
//! health); SQLite's serving paths and writes go through `direct`.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, AssertSqlSafe, Row as _};

use crate::plan::Write;
use crate::statement::{Column, Param, Query, Row, Statement, Value};
use crate::{Result, StateBackend, StateError};

type AnyQuery<'q> = sqlx::query::Query<'q, Any, AnyArguments>;

/// A sqlx pool and the backend it reaches.
pub(crate) struct Pool {
    pub(crate) pool: AnyPool,
    pub(crate) backend: StateBackend,
}

impl Pool {
    /// Runs a planned write as one transaction: its reads, its plan, its statements, commit.
    pub(crate) async fn write<W: Write>(&self, write: &W) -> Result<W::Output> {
        let db_error = |source| self.error(write.operation(), source);
        let reads = write.reads()?;
        let mut tx = match self.backend {
            // `BEGIN IMMEDIATE` takes the write lock up front (waiting through `busy_timeout`),
            // so a read is never upgraded to a write mid-transaction, which SQLite can only
            // refuse.
            StateBackend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            StateBackend::Postgres => self.pool.begin().await,
        }
        .map_err(db_error)?;
        let mut rows = Vec::with_capacity(reads.len());
        for query in reads {
            rows.push(fetch(&mut tx, query).await.map_err(db_error)?);
        }
        let planned = write.plan(rows)?;
        for statement in planned.statements {
            bind(statement).execute(&mut *tx).await.map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(planned.output)
    }

    /// Runs `queries` and returns their rows: one query on its own (a statement sees one
    /// snapshot), several in a read-only transaction that sees one snapshot.
    pub(crate) async fn read(
        &self,
        operation: &'static str,
        queries: Vec<Query<'_>>,
    ) -> Result<Vec<Vec<Row>>> {
        let db_error = |source| self.error(operation, source);
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        if queries.len() == 1 {
            let mut rows = Vec::with_capacity(1);
            for query in queries {
                rows.push(fetch(&mut conn, query).await.map_err(db_error)?);
            }
            return Ok(rows);
        }
        // SQLite's deferred transaction pins a WAL snapshot at its first read; PostgreSQL
        // needs `REPEATABLE READ` for that (its default takes a new snapshot per statement).
        let mut tx = match self.backend {
            StateBackend::Sqlite => sqlx::Connection::begin(&mut *conn).await,
            StateBackend::Postgres => {
                sqlx::Connection::begin_with(
                    &mut *conn,
                    "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                )
                .await
            }
        }
        .map_err(db_error)?;
        let mut rows = Vec::with_capacity(queries.len());
        for query in queries {
            rows.push(fetch(&mut tx, query).await.map_err(db_error)?);
        }
        tx.commit().await.map_err(db_error)?;
        Ok(rows)
    }

    /// PostgreSQL only: takes the session-level advisory lock `key` on a connection of its
    /// own, held until [`AdvisoryLock::release`], or returns `None` when another session holds
    /// it. A host that dies releases it with its session.
    pub(crate) async fn try_advisory_lock(&self, key: i64) -> Result<Option<AdvisoryLock>> {
        let db_error = |source| self.error("take the pruner lock", source);
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        let locked: bool = sqlx::query("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *conn)
            .await
            .and_then(|row| row.try_get(0))
            .map_err(db_error)?;
        Ok(locked.then_some(AdvisoryLock { conn: Some(conn), key }))
    }

    pub(crate) fn error(&self, operation: &'static str, source: sqlx::Error) -> StateError {
        StateError::Database { backend: self.backend, operation, source }
    }
}

/// A PostgreSQL session-level advisory lock, held by the connection that took it.
pub(crate) struct AdvisoryLock {
    conn: Option<PoolConnection<Any>>,
    key: i64,
}

impl AdvisoryLock {
    /// Unlocks, and returns the connection to the pool; if unlocking fails, the connection is
    /// closed instead, which releases the lock with its session.
    pub(crate) async fn release(mut self) {
        if let Some(mut conn) = self.conn.take() {
            let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(self.key)
                .execute(&mut *conn)
                .await;
            if unlocked.is_err() {
                conn.close_on_drop();
            }
        }
    }
}

impl Drop for AdvisoryLock {
    /// Not released (a cancelled or failed pass): the connection must not go back to the pool
    /// still holding the lock, so it is closed, which releases it.
    fn drop(&mut self) {
        if let Some(conn) = &mut self.conn {
            conn.close_on_drop();
        }
    }
}

/// Runs one query on a connection and decodes its rows as the query declares.
async fn fetch(conn: &mut AnyConnection, query: Query<'_>) -> Result<Vec<Row>, sqlx::Error> {
    let rows = bind(query.statement).fetch_all(&mut *conn).await?;
    let mut decoded = Vec::with_capacity(rows.len());
    for row in &rows {
        decoded.push(decode(row, query.columns)?);
    }
    Ok(decoded)
}

fn bind(statement: Statement<'_>) -> AnyQuery<'static> {
    let mut query = sqlx::query(AssertSqlSafe(statement.sql));
    for param in statement.params {
        query = match param {
            Param::Int(value) => query.bind(value),
            Param::Text(value) => query.bind(value.map(|text| text.into_owned())),
        };
    }
    // Only static fragments and placeholder numbers make up the SQL (see `statement`).
    query
}

fn decode(row: &AnyRow, columns: &[Column]) -> Result<Row, sqlx::Error> {
    let mut values = Vec::with_capacity(columns.len());
    for (column_idx, column) in columns.iter().enumerate() {
        values.push(match column {
            Column::Int => Value::Int(row.try_get(column_idx)?),
            Column::NullableInt => {
                row.try_get::<Option<i64>, _>(column_idx)?.map_or(Value::Null, Value::Int)
            }
            Column::Text => Value::Text(row.try_get(column_idx)?),
            Column::NullableText => {
                row.try_get::<Option<String>, _>(column_idx)?.map_or(Value::Null, Value::Text)
            }
        });
    }
    Ok(Row(values))
}
