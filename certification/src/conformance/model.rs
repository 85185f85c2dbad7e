//! The oracle: what the harness wrote into its private space, version by version, and an
//! evaluator of its own for what a request over that data must answer.
//!
//! It is deliberately independent of the SDK's reference store: filter semantics, similarity and
//! the expected matches are written here from the contract, so a bug shared by the reference and
//! a connector built on it cannot make both agree with the oracle.
//!
//! A returned document is judged by which written document it is (its content, which is unique
//! for every version the harness wrote), never by the scope label it carries.

use std::collections::{BTreeMap, HashMap};

use kyro_connector_sdk::{Distance, FilterExpr, Scope, StoredDocument};

/// One version of one document the harness wrote.
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    /// Index of its scope in [`Model::scopes`].
    pub(crate) scope: usize,
    pub(crate) id: String,
    /// 1 for the seeded version, then one more per rewrite.
    pub(crate) version: u32,
    /// Unique across every version of every document of the run.
    pub(crate) content: String,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) vector: Vec<f32>,
}

/// Which written document a returned one is, from the request scope's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The current version of a document of the request's scope.
    Home(usize),
    /// A document (any version) of another scope of the space.
    Foreign(usize),
    /// An older version, or a deleted document, of the request's scope.
    Stale(usize),
    /// Nothing the harness wrote under that id and content.
    Unknown,
}

/// The private space's documents, as the harness wrote them.
#[derive(Debug)]
pub(crate) struct Model {
    pub(crate) scopes: Vec<Scope>,
    pub(crate) aliases: Vec<String>,
    pub(crate) distance: Distance,
    /// Every version ever written.
    docs: Vec<Doc>,
    /// Per scope: id → index of the current version in `docs`.
    current: Vec<BTreeMap<String, usize>>,
    by_content: HashMap<String, usize>,
}

impl Model {
    pub(crate) fn new(scopes: Vec<Scope>, aliases: Vec<String>, distance: Distance) -> Self {
        let current = scopes.iter().map(|_| BTreeMap::new()).collect();
        Self { scopes, aliases, distance, docs: Vec::new(), current, by_content: HashMap::new() }
    }

    pub(crate) fn doc(&self, doc_idx: usize) -> &Doc {
        &self.docs[doc_idx]
    }

    pub(crate) fn alias(&self, scope_idx: usize) -> &str {
        &self.aliases[scope_idx]
    }

    /// The index of `scope` among the space's scopes.
    pub(crate) fn scope_index(&self, scope: &Scope) -> Option<usize> {
        self.scopes.iter().position(|candidate| candidate == scope)
    }

    /// Records a write of `doc` (the next version of its id in its scope) and returns its index.
    pub(crate) fn record_write(&mut self, doc: Doc) -> usize {
        let doc_idx = self.docs.len();
        self.by_content.insert(doc.content.clone(), doc_idx);
        self.current[doc.scope].insert(doc.id.clone(), doc_idx);
        self.docs.push(doc);
        doc_idx
    }

    /// Records a delete; returns whether there was a current document.
    pub(crate) fn record_delete(&mut self, scope_idx: usize, id: &str) -> bool {
        self.current[scope_idx].remove(id).is_some()
    }

    /// The current version of `id` in a scope.
    pub(crate) fn current(&self, scope_idx: usize, id: &str) -> Option<usize> {
        self.current[scope_idx].get(id).copied()
    }

    /// The current documents of a scope, by id.
    pub(crate) fn current_docs(&self, scope_idx: usize) -> impl Iterator<Item = usize> + '_ {
        self.current[scope_idx].values().copied()
    }

    pub(crate) fn n_current(&self, scope_idx: usize) -> usize {
        self.current[scope_idx].len()
    }

    /// The next version number for `id` in a scope.
    pub(crate) fn next_version(&self, scope_idx: usize, id: &str) -> u32 {
        self.docs
            .iter()
            .filter(|doc| doc.scope == scope_idx && doc.id == id)
            .map(|doc| doc.version)
            .max()
            .map_or(1, |version| version + 1)
    }

    /// Every id written anywhere in the space, sorted.
    pub(crate) fn all_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.docs.iter().map(|doc| doc.id.clone()).collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Ids written in `scope_idx` at some time (current or deleted).
    pub(crate) fn ids_ever_in(&self, scope_idx: usize) -> Vec<String> {
        let mut ids: Vec<String> = self
            .docs
            .iter()
            .filter(|doc| doc.scope == scope_idx)
            .map(|doc| doc.id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Which written document `returned` is, for a request in `scope_idx`: by content when the
    /// answer carries it, otherwise by id and metadata.
    pub(crate) fn identify(&self, scope_idx: usize, returned: &StoredDocument) -> Origin {
        let id = returned.id.as_str();
        if let Some(content) = &returned.content {
            let Some(&doc_idx) = self.by_content.get(content) else { return Origin::Unknown };
            let doc = &self.docs[doc_idx];
            if doc.id != id {
                return Origin::Unknown;
            }
            return self.classify(scope_idx, doc_idx);
        }
        // Without content: the request scope's current version when the metadata agrees (or the
        // store returned none), then any version anywhere with this id and metadata.
        let metadata = returned.metadata.as_map();
        if let Some(doc_idx) = self.current(scope_idx, id)
            && (metadata.is_empty() || self.docs[doc_idx].metadata == *metadata)
        {
            return Origin::Home(doc_idx);
        }
        let candidate = self
            .docs
            .iter()
            .enumerate()
            .rev()
            .find(|(_, doc)| doc.id == id && (metadata.is_empty() || doc.metadata == *metadata))
            .map(|(doc_idx, _)| doc_idx);
        match candidate {
            Some(doc_idx) => self.classify(scope_idx, doc_idx),
            None => Origin::Unknown,
        }
    }

    fn classify(&self, scope_idx: usize, doc_idx: usize) -> Origin {
        let doc = &self.docs[doc_idx];
        if doc.scope != scope_idx {
            Origin::Foreign(doc_idx)
        } else if self.current(scope_idx, &doc.id) == Some(doc_idx) {
            Origin::Home(doc_idx)
        } else {
            Origin::Stale(doc_idx)
        }
    }

    /// The current documents of a scope that match `filter`, nearest to `query` first.
    pub(crate) fn expected_search(
        &self,
        scope_idx: usize,
        query: &[f32],
        filter: Option<&FilterExpr>,
    ) -> Vec<(usize, f64)> {
        let mut matching: Vec<(usize, f64)> = self
            .current_docs(scope_idx)
            .filter(|&doc_idx| {
                filter.is_none_or(|filter| matches(filter, &self.docs[doc_idx].metadata))
            })
            .map(|doc_idx| (doc_idx, self.similarity(query, &self.docs[doc_idx].vector)))
            .collect();
        matching.sort_by(|left, right| right.1.total_cmp(&left.1));
        matching
    }

    /// Similarity under the store's distance, higher is closer, in `f64`.
    pub(crate) fn similarity(&self, left: &[f32], right: &[f32]) -> f64 {
        similarity(self.distance, left, right)
    }
}

/// The contract's filter semantics over string metadata: `exact` and `in` compare text exactly;
/// `range` reads the value as a number (trimmed, a finite decimal) and is false otherwise; a
/// missing key makes `exact`, `in` and `range` false and `not` of them true.
pub(crate) fn matches(filter: &FilterExpr, metadata: &BTreeMap<String, String>) -> bool {
    match filter {
        FilterExpr::Exact { key, value } => {
            metadata.get(key.as_str()).is_some_and(|actual| actual == value.as_str())
        }
        FilterExpr::In { key, values } => metadata
            .get(key.as_str())
            .is_some_and(|actual| values.iter().any(|value| value.as_str() == actual)),
        FilterExpr::Range { key, min, max } => {
            metadata.get(key.as_str()).and_then(|text| number(text)).is_some_and(|number| {
                min.is_none_or(|min| number >= min) && max.is_none_or(|max| number <= max)
            })
        }
        FilterExpr::And(children) => children.iter().all(|child| matches(child, metadata)),
        FilterExpr::Or(children) => children.iter().any(|child| matches(child, metadata)),
        FilterExpr::Not(child) => !matches(child, metadata),
    }
}

/// A metadata value read as a number: surrounding white space ignored, then a finite decimal.
pub(crate) fn number(text: &str) -> Option<f64> {
    let parsed: f64 = text.trim().parse().ok()?;
    parsed.is_finite().then_some(parsed)
}

/// Similarity of two vectors, higher is closer: cosine similarity, negated Euclidean distance,
/// or the inner product.
pub(crate) fn similarity(distance: Distance, left: &[f32], right: &[f32]) -> f64 {
    let mut dot = 0.0_f64;
    let mut left_norm = 0.0_f64;
    let mut right_norm = 0.0_f64;
    let mut squared = 0.0_f64;
    for (a, b) in left.iter().zip(right) {
        let (a, b) = (f64::from(*a), f64::from(*b));
        dot += a * b;
        left_norm += a * a;
        right_norm += b * b;
        squared += (a - b) * (a - b);
    }
    match distance {
        Distance::Cosine => {
            let norms = left_norm.sqrt() * right_norm.sqrt();
            if norms == 0.0 { 0.0 } else { dot / norms }
        }
        Distance::L2 => -squared.sqrt(),
        Distance::InnerProduct => dot,
    }
}
