//! The sqlx driver: executes planned statements over sqlx's `Any` pool. It serves every path
//! on PostgreSQL, and on SQLite the paths no request waits on (evidence reads, primers,
//! health); SQLite's serving paths and writes go through `direct`.

use sqlx::any::{AnyArguments, AnyRow};
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

    pub(crate) fn error(&self, operation: &'static str, source: sqlx::Error) -> StateError {
        StateError::Database { backend: self.backend, operation, source }
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
