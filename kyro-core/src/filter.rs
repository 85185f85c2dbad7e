//! The runtime filter algebra: `exact`, `in`, `range`, `and`, `or`, `not` over metadata keys.
//!
//! A [`RuntimeFilter`] is a [`FilterExpr`] tree that passed the contract's limits (depth, node
//! count, `in` size, key syntax, value size, finite ranges). Whether a key is filterable for a given
//! store is a connector's declaration and is checked against it with [`RuntimeFilter::keys`];
//! this module does not know about stores.

use serde::{Deserialize, Serialize};

use crate::error::{ValidationError, ValidationResult};
use crate::limits::{
    MAX_FILTER_DEPTH, MAX_FILTER_NODES, MAX_IN_VALUES, MAX_KEY_BYTES, MAX_VALUE_BYTES,
};

/// A metadata key: `^[A-Za-z0-9_]+$`, at most 128 bytes.
///
/// The character rule is what lets connectors name keys in store query languages without quoting
/// tricks; values are always bound as parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FilterKey(String);

impl FilterKey {
    /// Checks and wraps a key.
    ///
    /// # Errors
    ///
    /// The key is empty, longer than 128 bytes, or has a character outside `[A-Za-z0-9_]`.
    pub fn new(key: impl Into<String>) -> ValidationResult<Self> {
        let key = key.into();
        validate_key("filter key", &key)?;
        Ok(Self(key))
    }

    /// The key text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a metadata or filter key against `^[A-Za-z0-9_]+$` and the 128-byte limit.
pub(crate) fn validate_key(field: &'static str, key: &str) -> ValidationResult<()> {
    if key.is_empty() {
        return Err(ValidationError::Empty { field });
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(ValidationError::TooLong {
            field,
            max_bytes: MAX_KEY_BYTES,
            actual_bytes: key.len(),
        });
    }
    if !key.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_') {
        return Err(ValidationError::KeyCharacters { field });
    }
    Ok(())
}

impl TryFrom<String> for FilterKey {
    type Error = ValidationError;

    fn try_from(key: String) -> ValidationResult<Self> {
        Self::new(key)
    }
}

impl From<FilterKey> for String {
    fn from(key: FilterKey) -> Self {
        key.0
    }
}

impl std::fmt::Display for FilterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A value compared for equality with a metadata value, at most 4096 bytes.
///
/// Metadata values are strings in the contract, so filter values are too; the host turns JSON
/// numbers and booleans into their canonical text before building one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FilterValue(String);

impl FilterValue {
    /// Checks and wraps a value.
    ///
    /// # Errors
    ///
    /// The value is longer than 4096 bytes.
    pub fn new(value: impl Into<String>) -> ValidationResult<Self> {
        let value = value.into();
        if value.len() > MAX_VALUE_BYTES {
            return Err(ValidationError::TooLong {
                field: "filter value",
                max_bytes: MAX_VALUE_BYTES,
                actual_bytes: value.len(),
            });
        }
        Ok(Self(value))
    }

    /// The value text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for FilterValue {
    type Error = ValidationError;

    fn try_from(value: String) -> ValidationResult<Self> {
        Self::new(value)
    }
}

impl From<FilterValue> for String {
    fn from(value: FilterValue) -> Self {
        value.0
    }
}

/// One node of a filter tree, before the tree-wide limits are checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FilterExpr {
    /// The metadata value under `key` equals `value`.
    Exact {
        /// The metadata key.
        key: FilterKey,
        /// The value it must equal.
        value: FilterValue,
    },
    /// The metadata value under `key` equals one of `values`.
    In {
        /// The metadata key.
        key: FilterKey,
        /// 1..=256 candidate values.
        values: Vec<FilterValue>,
    },
    /// The metadata value under `key`, read as a number, lies in `[min, max]`.
    Range {
        /// The metadata key.
        key: FilterKey,
        /// Inclusive lower bound.
        min: Option<f64>,
        /// Inclusive upper bound.
        max: Option<f64>,
    },
    /// Every child matches.
    And(Vec<FilterExpr>),
    /// At least one child matches.
    Or(Vec<FilterExpr>),
    /// The child does not match.
    Not(Box<FilterExpr>),
}

/// A filter tree that satisfies the contract's limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "FilterExpr", into = "FilterExpr")]
pub struct RuntimeFilter {
    root: FilterExpr,
    n_nodes: usize,
}

impl RuntimeFilter {
    /// Checks a whole tree: depth at most 16 (the root is depth 1), at most 256 nodes, `in` with
    /// 1..=256 values, `and`/`or` with at least one child, ranges with a finite bound and
    /// `min <= max`.
    ///
    /// # Errors
    ///
    /// The first rule the tree breaks.
    pub fn new(root: FilterExpr) -> ValidationResult<Self> {
        let mut n_nodes = 0;
        check_node(&root, 1, &mut n_nodes)?;
        Ok(Self { root, n_nodes })
    }

    /// The validated tree.
    pub fn root(&self) -> &FilterExpr {
        &self.root
    }

    /// How many nodes the tree has.
    pub fn n_nodes(&self) -> usize {
        self.n_nodes
    }

    /// Every key the tree mentions, in tree order, duplicates included.
    pub fn keys(&self) -> Vec<&FilterKey> {
        let mut keys = Vec::new();
        collect_keys(&self.root, &mut keys);
        keys
    }
}

impl TryFrom<FilterExpr> for RuntimeFilter {
    type Error = ValidationError;

    fn try_from(root: FilterExpr) -> ValidationResult<Self> {
        Self::new(root)
    }
}

impl From<RuntimeFilter> for FilterExpr {
    fn from(filter: RuntimeFilter) -> Self {
        filter.root
    }
}

fn check_node(node: &FilterExpr, depth: usize, n_nodes: &mut usize) -> ValidationResult<()> {
    if depth > MAX_FILTER_DEPTH {
        return Err(ValidationError::Count {
            field: "filter depth",
            min: 1,
            max: MAX_FILTER_DEPTH,
            actual: depth,
        });
    }
    *n_nodes += 1;
    if *n_nodes > MAX_FILTER_NODES {
        return Err(ValidationError::Count {
            field: "filter nodes",
            min: 1,
            max: MAX_FILTER_NODES,
            actual: *n_nodes,
        });
    }
    match node {
        FilterExpr::Exact { .. } => Ok(()),
        FilterExpr::In { values, .. } => {
            if values.is_empty() || values.len() > MAX_IN_VALUES {
                return Err(ValidationError::Count {
                    field: "in values",
                    min: 1,
                    max: MAX_IN_VALUES,
                    actual: values.len(),
                });
            }
            Ok(())
        }
        FilterExpr::Range { min, max, .. } => check_range(*min, *max),
        FilterExpr::And(children) | FilterExpr::Or(children) => {
            if children.is_empty() {
                return Err(ValidationError::Rule {
                    field: "and/or filter",
                    rule: "needs at least one child",
                });
            }
            for child in children {
                check_node(child, depth + 1, n_nodes)?;
            }
            Ok(())
        }
        FilterExpr::Not(child) => check_node(child, depth + 1, n_nodes),
    }
}

fn check_range(min: Option<f64>, max: Option<f64>) -> ValidationResult<()> {
    if min.is_none() && max.is_none() {
        return Err(ValidationError::Rule { field: "range filter", rule: "needs min or max" });
    }
    if min.is_some_and(|bound| !bound.is_finite()) || max.is_some_and(|bound| !bound.is_finite()) {
        return Err(ValidationError::NonFinite { field: "range filter" });
    }
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        return Err(ValidationError::Rule { field: "range filter", rule: "needs min <= max" });
    }
    Ok(())
}

fn collect_keys<'a>(node: &'a FilterExpr, keys: &mut Vec<&'a FilterKey>) {
    match node {
        FilterExpr::Exact { key, .. }
        | FilterExpr::In { key, .. }
        | FilterExpr::Range { key, .. } => keys.push(key),
        FilterExpr::And(children) | FilterExpr::Or(children) => {
            for child in children {
                collect_keys(child, keys);
            }
        }
        FilterExpr::Not(child) => collect_keys(child, keys),
    }
}
