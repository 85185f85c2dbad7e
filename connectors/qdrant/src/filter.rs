//! The one translation from KyroDB's filter algebra to Qdrant's: `FilterExpr` becomes a neutral
//! [`Condition`] tree, which the server backend renders as gRPC `Filter`s and the embedded
//! backend as qdrant-edge `Filter`s.
//!
//! Semantics follow the SDK's reference `matches()`:
//! - metadata values are strings, stored under `<metadata_field>.<key>`; `exact` and `in` are
//!   keyword matches on those strings, never full-text matches;
//! - `range` compares the value read as a number: a value whose trimmed text parses as a finite
//!   `f64` is mirrored as a number under `<metadata_field>_numeric.<key>` when it is written, and
//!   `range` runs on that mirror, so a value that does not read as a number never matches;
//! - `not` matches whatever its child does not, including documents without the key.
//!
//! Keys are checked against the declared filterable keys before anything is built (the SDK's
//! `CapabilityManifest::check_search`, called by the connector's search), and they are already
//! identifiers (`[A-Za-z0-9_]+`), so a key can never form another JSON path. Values are
//! carried as data into typed match values and are never parsed.
//!
//! This module does not decide the scope: [`scoped`] always puts tenant and namespace `must`
//! conditions around whatever the caller asked for.

use kyro_connector_sdk::{DocumentId, FilterExpr, RuntimeFilter, Scope};

use crate::config::PayloadFields;
use crate::payload::PointKey;

/// A payload field, or a key inside one, addressed without parsing any text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldPath {
    pub(crate) field: String,
    pub(crate) key: Option<String>,
}

impl FieldPath {
    fn top(field: &str) -> Self {
        Self { field: field.to_owned(), key: None }
    }

    fn nested(field: &str, key: &str) -> Self {
        Self { field: field.to_owned(), key: Some(key.to_owned()) }
    }

    /// The dotted form Qdrant's gRPC API takes; both parts are identifiers, so no quoting is
    /// ever needed.
    pub(crate) fn dotted(&self) -> String {
        match &self.key {
            Some(key) => format!("{}.{key}", self.field),
            None => self.field.clone(),
        }
    }
}

/// A store-neutral filter tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Condition {
    /// The keyword at `path` equals `value`.
    Keyword { path: FieldPath, value: String },
    /// The keyword at `path` equals one of `values`.
    KeywordAny { path: FieldPath, values: Vec<String> },
    /// The number at `path` lies in `[min, max]`.
    Range { path: FieldPath, min: Option<f64>, max: Option<f64> },
    /// The point is one of these.
    HasPoint(Vec<PointKey>),
    /// Every child holds.
    All(Vec<Condition>),
    /// At least one child holds.
    Any(Vec<Condition>),
    /// The child does not hold.
    Not(Box<Condition>),
}

/// Translates a caller's filter, already checked against the manifest
/// (`CapabilityManifest::check_search`).
pub(crate) fn translate(filter: &RuntimeFilter, fields: &PayloadFields) -> Condition {
    translate_node(filter.root(), fields)
}

fn translate_node(node: &FilterExpr, fields: &PayloadFields) -> Condition {
    match node {
        FilterExpr::Exact { key, value } => Condition::Keyword {
            path: FieldPath::nested(&fields.metadata, key.as_str()),
            value: value.as_str().to_owned(),
        },
        FilterExpr::In { key, values } => Condition::KeywordAny {
            path: FieldPath::nested(&fields.metadata, key.as_str()),
            values: values.iter().map(|value| value.as_str().to_owned()).collect(),
        },
        FilterExpr::Range { key, min, max } => Condition::Range {
            path: FieldPath::nested(&fields.metadata_numeric, key.as_str()),
            min: *min,
            max: *max,
        },
        FilterExpr::And(children) => {
            Condition::All(children.iter().map(|child| translate_node(child, fields)).collect())
        }
        FilterExpr::Or(children) => {
            Condition::Any(children.iter().map(|child| translate_node(child, fields)).collect())
        }
        FilterExpr::Not(child) => Condition::Not(Box::new(translate_node(child, fields))),
    }
}

/// The scope's `must` conditions (tenant and namespace), then `inner` if there is one.
pub(crate) fn scoped(scope: &Scope, fields: &PayloadFields, inner: Option<Condition>) -> Condition {
    let mut conditions = vec![
        Condition::Keyword {
            path: FieldPath::top(&fields.tenant),
            value: scope.tenant_id().to_owned(),
        },
        Condition::Keyword {
            path: FieldPath::top(&fields.namespace),
            value: scope.namespace().to_owned(),
        },
    ];
    conditions.extend(inner);
    Condition::All(conditions)
}

/// Exactly these documents of the scope: their derived point ids, and their id field too, so a
/// point whose payload does not name the document is never taken for it.
pub(crate) fn scoped_ids(scope: &Scope, fields: &PayloadFields, ids: &[DocumentId]) -> Condition {
    let points = ids.iter().map(|id| PointKey::derive(scope, id)).collect();
    let id_values = ids.iter().map(|id| id.as_str().to_owned()).collect();
    scoped(
        scope,
        fields,
        Some(Condition::All(vec![
            Condition::HasPoint(points),
            Condition::KeywordAny { path: FieldPath::top(&fields.id), values: id_values },
        ])),
    )
}
