//! Translating the filter algebra into a SQL condition over the metadata `jsonb` column.
//!
//! The SQL text depends only on the tree's shape: every key and every value becomes a bound
//! parameter (`(metadata ->> $4) = $5`), so nothing a caller sends is ever parsed as SQL. Keys
//! are checked against the declared filterable keys before translation (see `store`).
//!
//! Each node evaluates to a non-null boolean, so `NOT` over a missing key is `true`, exactly as
//! the reference store's `matches()` in the SDK: `exact`, `in` and `range` are false when the key
//! is missing, and `not` negates that. It deliberately does not try to use a GIN index: `@>`
//! compares JSON types (`"5"` is not `5`), which would change the semantics.

use kyro_connector_sdk::FilterExpr;

/// A value bound to a filter's placeholder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FilterBind {
    /// A `text` parameter: a key, a value, or a range bound written as a decimal number.
    Text(String),
    /// A `text[]` parameter: the candidates of an `in`.
    TextArray(Vec<String>),
}

/// A SQL condition and the values for its placeholders, in placeholder order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SqlFilter {
    pub(crate) sql: String,
    pub(crate) binds: Vec<FilterBind>,
}

/// A metadata value that reads as a number, the way Rust's `f64` parser does after trimming white
/// space: digits with an optional point, or a point and digits, and an optional exponent. The
/// exponent is capped at three significant digits so the cast to `numeric` can never fail
/// (PostgreSQL refuses exponents past 1000); `inf` and `nan` are not finite and never match.
/// Only character classes, no backslashes, so the literal means the same whatever
/// `standard_conforming_strings` says.
const NUMBER_PATTERN: &str =
    "^[[:space:]]*([+-]?(?:[0-9]+[.]?[0-9]*|[.][0-9]+)(?:[eE][+-]?0*[0-9]{1,3})?)[[:space:]]*$";

/// Longest metadata value read as a number; the contract caps values at 4096 bytes, and this keeps
/// the `numeric` cast within PostgreSQL's digit limits for anything stored by other writers.
const MAX_NUMBER_BYTES: usize = 4096;

/// Translates `filter` over the quoted metadata column, numbering placeholders from `first_param`.
pub(crate) fn translate(
    filter: &FilterExpr,
    metadata_column: &str,
    first_param: usize,
) -> SqlFilter {
    let mut translation =
        Translation { metadata_column, next_param: first_param, binds: Vec::new() };
    let mut sql = String::new();
    translation.node(filter, &mut sql);
    SqlFilter { sql, binds: translation.binds }
}

struct Translation<'a> {
    metadata_column: &'a str,
    next_param: usize,
    binds: Vec<FilterBind>,
}

impl Translation<'_> {
    fn bind(&mut self, value: FilterBind) -> usize {
        let param = self.next_param;
        self.next_param += 1;
        self.binds.push(value);
        param
    }

    fn node(&mut self, node: &FilterExpr, sql: &mut String) {
        use std::fmt::Write as _;
        let column = self.metadata_column;
        // `write!` into a String cannot fail.
        match node {
            FilterExpr::Exact { key, value } => {
                let key = self.bind(FilterBind::Text(key.as_str().to_owned()));
                let value = self.bind(FilterBind::Text(value.as_str().to_owned()));
                let _ = write!(sql, "coalesce(({column} ->> ${key}) = ${value}, false)");
            }
            FilterExpr::In { key, values } => {
                let key = self.bind(FilterBind::Text(key.as_str().to_owned()));
                let values = self.bind(FilterBind::TextArray(
                    values.iter().map(|value| value.as_str().to_owned()).collect(),
                ));
                let _ = write!(sql, "coalesce(({column} ->> ${key}) = ANY(${values}), false)");
            }
            FilterExpr::Range { key, min, max } => {
                let key = self.bind(FilterBind::Text(key.as_str().to_owned()));
                // An open side is bounded by the largest finite f64, so values the reference
                // store would parse as infinite never match, as there.
                let min = self.bind(FilterBind::Text(decimal(min.unwrap_or(-f64::MAX))));
                let max = self.bind(FilterBind::Text(decimal(max.unwrap_or(f64::MAX))));
                let _ = write!(
                    sql,
                    "coalesce(CASE WHEN octet_length({column} ->> ${key}) <= {MAX_NUMBER_BYTES} \
                     THEN substring({column} ->> ${key} FROM '{NUMBER_PATTERN}')::numeric END \
                     BETWEEN ${min}::numeric AND ${max}::numeric, false)"
                );
            }
            FilterExpr::And(children) | FilterExpr::Or(children) => {
                let joiner = if matches!(node, FilterExpr::And(_)) { " AND " } else { " OR " };
                sql.push('(');
                for (child_idx, child) in children.iter().enumerate() {
                    if child_idx > 0 {
                        sql.push_str(joiner);
                    }
                    self.node(child, sql);
                }
                sql.push(')');
            }
            FilterExpr::Not(child) => {
                sql.push_str("(NOT ");
                self.node(child, sql);
                sql.push(')');
            }
        }
    }
}

/// A finite `f64` as a plain decimal that `numeric` reads exactly (Rust's shortest round-trip
/// form, which never uses an exponent).
fn decimal(bound: f64) -> String {
    format!("{bound}")
}
