//! The one vocabulary both drivers execute: statements planned without IO, with numbered
//! `$N` placeholders and parameters of the two types the schema uses (BIGINT and TEXT, either
//! nullable), and the rows queries return, decoded by the column types each query declares.
//!
//! Nothing here talks to a database. The only SQL assembled at runtime is static text and
//! placeholder numbers (`rows_sql`, `placeholders`), never text from inputs: every input is a
//! bound parameter.

use std::borrow::Cow;

use crate::{Result, StateError};

/// One statement to execute: SQL and its parameters, `$1` first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Statement<'a> {
    pub(crate) sql: Cow<'static, str>,
    pub(crate) params: Vec<Param<'a>>,
}

impl<'a> Statement<'a> {
    pub(crate) fn new(sql: &'static str, params: Vec<Param<'a>>) -> Self {
        Self { sql: Cow::Borrowed(sql), params }
    }

    /// A query of this statement whose rows have these columns.
    pub(crate) fn returning(self, columns: &'static [Column]) -> Query<'a> {
        Query { statement: self, columns }
    }
}

/// A bound parameter. The type travels with a null, so PostgreSQL can infer the placeholder's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param<'a> {
    Int(Option<i64>),
    Text(Option<Cow<'a, str>>),
}

impl<'a> Param<'a> {
    pub(crate) fn int(value: i64) -> Self {
        Self::Int(Some(value))
    }

    pub(crate) fn text(value: &'a str) -> Self {
        Self::Text(Some(Cow::Borrowed(value)))
    }

    pub(crate) fn optional_text(value: Option<&'a str>) -> Self {
        Self::Text(value.map(Cow::Borrowed))
    }

    pub(crate) fn owned_text(value: String) -> Self {
        Self::Text(Some(Cow::Owned(value)))
    }
}

/// A statement whose rows are read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Query<'a> {
    pub(crate) statement: Statement<'a>,
    /// The type of each column of a row, in order.
    pub(crate) columns: &'static [Column],
}

/// The type of a result column. Drivers decode each column as its query declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Column {
    Int,
    NullableInt,
    Text,
    NullableText,
}

/// A decoded column value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Text(String),
}

/// One row as a driver decoded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row(pub(crate) Vec<Value>);

impl Row {
    pub(crate) fn int(&self, column_idx: usize) -> Result<i64> {
        match self.0.get(column_idx) {
            Some(Value::Int(value)) => Ok(*value),
            _ => Err(shape_error(column_idx)),
        }
    }

    pub(crate) fn optional_int(&self, column_idx: usize) -> Result<Option<i64>> {
        match self.0.get(column_idx) {
            Some(Value::Int(value)) => Ok(Some(*value)),
            Some(Value::Null) => Ok(None),
            _ => Err(shape_error(column_idx)),
        }
    }

    /// Takes the text out of a column; a second take of the same column finds it empty.
    pub(crate) fn text(&mut self, column_idx: usize) -> Result<String> {
        match self.0.get_mut(column_idx) {
            Some(Value::Text(value)) => Ok(std::mem::take(value)),
            _ => Err(shape_error(column_idx)),
        }
    }

    pub(crate) fn optional_text(&mut self, column_idx: usize) -> Result<Option<String>> {
        match self.0.get_mut(column_idx) {
            Some(Value::Text(value)) => Ok(Some(std::mem::take(value))),
            Some(Value::Null) => Ok(None),
            _ => Err(shape_error(column_idx)),
        }
    }
}

/// A row that does not have the columns its query declared: a driver bug, never data.
fn shape_error(column_idx: usize) -> StateError {
    StateError::Corrupt { field: "result row", value: format!("column {column_idx}") }
}

/// The statements that write `rows`, at most `rows_per_statement` rows each:
/// `prefix (..), (..) suffix` with `n_columns` parameters per row, pushed by `bind`.
pub(crate) fn multi_row<'r, 'a, T>(
    rows: &'r [T],
    rows_per_statement: usize,
    (prefix, n_columns, suffix): (&str, usize, &str),
    mut bind: impl FnMut(&'r T, &mut Vec<Param<'a>>),
) -> Vec<Statement<'a>> {
    let mut statements = Vec::with_capacity(rows.len().div_ceil(rows_per_statement.max(1)));
    for chunk in rows.chunks(rows_per_statement.max(1)) {
        let mut params = Vec::with_capacity(chunk.len() * n_columns);
        for row in chunk {
            bind(row, &mut params);
        }
        debug_assert_eq!(params.len(), chunk.len() * n_columns, "{prefix}");
        let sql = rows_sql(prefix, chunk.len(), n_columns, suffix);
        statements.push(Statement { sql: Cow::Owned(sql), params });
    }
    statements
}

/// `prefix` + `n_rows` groups of `n_columns` numbered placeholders + `suffix`.
pub(crate) fn rows_sql(prefix: &str, n_rows: usize, n_columns: usize, suffix: &str) -> String {
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
    sql
}

/// `(c1 = $first AND c2 = $first+1 ...) OR (...)`, `n_rows` groups over `columns`: a
/// row-value `IN` list that SQLite accepts without a subquery.
pub(crate) fn push_row_matches(sql: &mut String, columns: &[&str], first: usize, n_rows: usize) {
    for row_idx in 0..n_rows {
        if row_idx > 0 {
            sql.push_str(" OR ");
        }
        sql.push('(');
        for (column_idx, column) in columns.iter().enumerate() {
            if column_idx > 0 {
                sql.push_str(" AND ");
            }
            sql.push_str(column);
            sql.push_str(" = $");
            sql.push_str(&(first + row_idx * columns.len() + column_idx).to_string());
        }
        sql.push(')');
    }
}

/// Appends `$first, $first+1, ...` (`n` placeholders). Both backends bind `$N` by number.
pub(crate) fn push_placeholders(sql: &mut String, first: usize, n: usize) {
    for placeholder_idx in 0..n {
        if placeholder_idx > 0 {
            sql.push_str(", ");
        }
        sql.push('$');
        sql.push_str(&(first + placeholder_idx).to_string());
    }
}
