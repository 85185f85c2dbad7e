//! Generating the private space's documents and the requests run against them, from the run's
//! seed: nothing here looks at what the connector answered, so the same seed generates the same
//! program against any store.
//!
//! Metadata draws from small per-key domains that mix numbers, case-only variants, quotes,
//! wildcards and non-ASCII text, so generated filters match some documents and not others.
//! Queries sit on or near documents of other scopes (poisoned neighbours) as often as near the
//! request's own.

use std::collections::BTreeMap;

use kyro_connector_sdk::{
    CapabilityManifest, Embedding, FilterExpr, FilterKey, FilterValue, FilterableKeys,
    RuntimeFilter, SearchRequest,
};

use super::model::{Doc, Model, matches, number};
use crate::rng::Rng;

/// How much a run generates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizes {
    pub(crate) n_searches: usize,
    pub(crate) n_fetches: usize,
    pub(crate) n_writes: usize,
    /// The primary scope's volume is `max_top_k` capped at this, plus a margin.
    pub(crate) max_primary_volume: u32,
    /// Filter trees nest at most this deep, except the occasional deep chain.
    pub(crate) filter_depth: usize,
    /// Percent of filters that are a chain down to the contract's deepest tree.
    pub(crate) deep_chain_percent: usize,
    /// Connector calls a failing property may spend on shrinking its witness.
    pub(crate) shrink_calls: usize,
}

impl Sizes {
    pub(crate) const STANDARD: Self = Self {
        n_searches: 40,
        n_fetches: 12,
        n_writes: 10,
        max_primary_volume: 200,
        filter_depth: 4,
        deep_chain_percent: 5,
        shrink_calls: 40,
    };

    pub(crate) const DEEP: Self = Self {
        n_searches: 400,
        n_fetches: 100,
        n_writes: 60,
        max_primary_volume: 1000,
        filter_depth: 8,
        deep_chain_percent: 10,
        shrink_calls: 200,
    };
}

/// The contract's deepest filter tree (the root is depth 1).
const MAX_FILTER_DEPTH: usize = 16;
/// At most this many declared keys are used; metadata carries one entry per key used.
pub(crate) const MAX_KEYS: usize = 16;
/// Keys used when the connector accepts any valid key.
const ANY_KEYS: [&str; 3] = ["kc_lang", "kc_year", "kc_tag"];
const NUMERIC_VALUES: [&str; 8] = ["-3", "0", "7", "12.5", "2019", "2021", "2024", "100"];
const TEXT_VALUES: [&str; 10] =
    ["en", "EN", "de", "O'Brien", "日本語", "a\"b", "x y", "%", "_", "' OR 1=1 --"];
/// A value no document holds.
const ABSENT_VALUE: &str = "zz-absent";

/// The keys filters and metadata use: the declared ones (up to [`MAX_KEYS`], in order), or a
/// fixed set when any valid key is filterable.
pub(crate) fn keys(manifest: &CapabilityManifest) -> Vec<FilterKey> {
    match &manifest.filterable_keys {
        FilterableKeys::Listed(keys) => keys.iter().take(MAX_KEYS).cloned().collect(),
        FilterableKeys::AnyValidKey => {
            ANY_KEYS.iter().filter_map(|key| FilterKey::new(*key).ok()).collect()
        }
    }
}

/// The values each key draws from.
pub(crate) struct Domains {
    pub(crate) keys: Vec<FilterKey>,
    values: Vec<Vec<&'static str>>,
}

impl Domains {
    pub(crate) fn new(rng: &mut Rng, keys: Vec<FilterKey>) -> Self {
        let values = keys
            .iter()
            .map(|_| {
                let mut domain: Vec<&'static str> = rng
                    .sample_indices(NUMERIC_VALUES.len(), 3)
                    .into_iter()
                    .map(|idx| NUMERIC_VALUES[idx])
                    .collect();
                domain.extend(
                    rng.sample_indices(TEXT_VALUES.len(), 3)
                        .into_iter()
                        .map(|idx| TEXT_VALUES[idx]),
                );
                domain
            })
            .collect();
        Self { keys, values }
    }

    /// Metadata for a new document version: each key present nine times in ten.
    pub(crate) fn metadata(&self, rng: &mut Rng) -> BTreeMap<String, String> {
        let mut metadata = BTreeMap::new();
        for (key, domain) in self.keys.iter().zip(&self.values) {
            if rng.percent(90) {
                metadata.insert(key.as_str().to_owned(), (*rng.pick(domain)).to_owned());
            }
        }
        metadata
    }

    /// A random filter tree within the node cap, nested at most `depth` deep (or, now and then,
    /// a chain down to the contract's deepest tree).
    pub(crate) fn filter(
        &self,
        rng: &mut Rng,
        sizes: Sizes,
        max_nodes: usize,
    ) -> Option<RuntimeFilter> {
        if self.keys.is_empty() {
            return None;
        }
        let max_nodes = max_nodes.clamp(1, 256);
        for _ in 0..8 {
            let mut budget = max_nodes;
            let tree = if rng.percent(sizes.deep_chain_percent) && max_nodes >= MAX_FILTER_DEPTH {
                self.chain(rng, MAX_FILTER_DEPTH, &mut budget)
            } else {
                let depth = rng.between(1, sizes.filter_depth.min(MAX_FILTER_DEPTH));
                self.tree(rng, depth, &mut budget)
            };
            if let Ok(filter) = RuntimeFilter::new(tree) {
                return Some(filter);
            }
        }
        None
    }

    /// A filter that `metadata` satisfies, for read-backs after a write: a random tree when one
    /// of a few matches, otherwise an exact match on one of its entries.
    pub(crate) fn matching_filter(
        &self,
        rng: &mut Rng,
        sizes: Sizes,
        max_nodes: usize,
        metadata: &BTreeMap<String, String>,
    ) -> Option<RuntimeFilter> {
        for _ in 0..12 {
            let filter = self.filter(rng, sizes, max_nodes)?;
            if matches(filter.root(), metadata) {
                return Some(filter);
            }
        }
        let (key, value) = metadata.iter().next()?;
        let exact = FilterExpr::Exact {
            key: FilterKey::new(key.clone()).ok()?,
            value: FilterValue::new(value.clone()).ok()?,
        };
        RuntimeFilter::new(exact).ok()
    }

    fn tree(&self, rng: &mut Rng, depth: usize, budget: &mut usize) -> FilterExpr {
        *budget = budget.saturating_sub(1);
        if depth <= 1 || *budget < 3 || rng.percent(35) {
            return self.leaf(rng);
        }
        if rng.percent(25) {
            return FilterExpr::Not(Box::new(self.tree(rng, depth - 1, budget)));
        }
        let n_children = rng.between(2, 3);
        let mut children = Vec::with_capacity(n_children);
        for _ in 0..n_children {
            if *budget == 0 {
                break;
            }
            children.push(self.tree(rng, depth - 1, budget));
        }
        if children.is_empty() {
            children.push(self.leaf(rng));
        }
        if rng.percent(50) { FilterExpr::And(children) } else { FilterExpr::Or(children) }
    }

    /// `not(and(not(or(... leaf))))` down to `depth`.
    fn chain(&self, rng: &mut Rng, depth: usize, budget: &mut usize) -> FilterExpr {
        let mut node = self.leaf(rng);
        for level in 1..depth {
            *budget = budget.saturating_sub(1);
            node = match level % 3 {
                0 => FilterExpr::Not(Box::new(node)),
                1 => FilterExpr::And(vec![node]),
                _ => FilterExpr::Or(vec![node]),
            };
        }
        node
    }

    fn leaf(&self, rng: &mut Rng) -> FilterExpr {
        let key_idx = rng.below(self.keys.len());
        let key = self.keys[key_idx].clone();
        let domain = &self.values[key_idx];
        let value = |rng: &mut Rng| {
            let text = if rng.percent(85) { *rng.pick(domain) } else { ABSENT_VALUE };
            FilterValue::new(text).expect("generated filter values are short")
        };
        match rng.below(10) {
            0..=3 => FilterExpr::Exact { key, value: value(rng) },
            4..=6 => {
                let n_values = rng.between(1, 3);
                FilterExpr::In { key, values: (0..n_values).map(|_| value(rng)).collect() }
            }
            _ => {
                let numbers: Vec<f64> = domain.iter().filter_map(|text| number(text)).collect();
                let mut bound = || -> f64 {
                    let base = if numbers.is_empty() { 0.0 } else { *rng.pick(&numbers) };
                    base + [-0.5, 0.0, 0.0, 0.5][rng.below(4)]
                };
                let (low, high) = (bound(), bound());
                let (low, high) = if low <= high { (low, high) } else { (high, low) };
                match rng.below(4) {
                    0 => FilterExpr::Range { key, min: Some(low), max: None },
                    1 => FilterExpr::Range { key, min: None, max: Some(high) },
                    _ => FilterExpr::Range { key, min: Some(low), max: Some(high) },
                }
            }
        }
    }
}

/// Ids in styles that trip naive stores: case-only variants, quotes, wildcards, spaces and
/// non-ASCII text.
pub(crate) fn id_for(idx: usize) -> String {
    match idx % 6 {
        0 => format!("doc-{idx}"),
        1 => format!("DOC-{}", idx - 1),
        2 => format!("o'neil-{idx}"),
        3 => format!("日本-{idx}"),
        4 => format!("a%b_{idx}"),
        _ => format!("sp ace-{idx}"),
    }
}

/// A fresh document version of `id` in a scope.
pub(crate) fn new_doc(
    rng: &mut Rng,
    model: &Model,
    domains: &Domains,
    scope_idx: usize,
    id: &str,
    vector: Vec<f32>,
) -> Doc {
    Doc {
        scope: scope_idx,
        id: id.to_owned(),
        version: model.next_version(scope_idx, id),
        // Unique per version and scope-blind: a connector learns nothing from it.
        content: format!("c{}", rng.hex(24)),
        metadata: domains.metadata(rng),
        vector,
    }
}

/// A query vector and how it was made, for the witness.
pub(crate) fn query(
    rng: &mut Rng,
    model: &Model,
    scope_idx: usize,
    dimension: usize,
) -> (Vec<f32>, String) {
    let foreign: Vec<usize> = (0..model.scopes.len())
        .filter(|&other| other != scope_idx)
        .flat_map(|other| model.current_docs(other))
        .collect();
    let home: Vec<usize> = model.current_docs(scope_idx).collect();
    let roll = rng.below(10);
    let target = match roll {
        0..=3 if !foreign.is_empty() => Some(*rng.pick(&foreign)),
        4..=7 if !home.is_empty() => Some(*rng.pick(&home)),
        _ => None,
    };
    let Some(doc_idx) = target else {
        return (rng.unit_vector(dimension), "a random direction".to_owned());
    };
    let doc = model.doc(doc_idx);
    let vector = doc.vector.clone();
    let where_from = format!("{:?} v{} of {}", doc.id, doc.version, model.alias(doc.scope));
    if rng.percent(40) {
        return (vector, format!("exactly the vector of {where_from}"));
    }
    let weight = [0.02_f32, 0.05, 0.1][rng.below(3)];
    let noise = rng.unit_vector(dimension);
    let mut moved: Vec<f32> = vector
        .iter()
        .zip(&noise)
        .map(|(value, noise)| value * (1.0 - weight) + noise * weight)
        .collect();
    let norm = moved.iter().map(|value| value * value).sum::<f32>().sqrt();
    if norm > 0.0 {
        moved.iter_mut().for_each(|value| *value /= norm);
    }
    (
        moved,
        format!("the vector of {where_from}, moved {}% towards a random direction", weight * 100.0),
    )
}

/// A `top_k` for a request whose filter matches `n_matches` documents: the edges (1, 20, 21,
/// the cap, the number of matches and its neighbours) as often as values in between.
pub(crate) fn top_k(rng: &mut Rng, cap: u32, n_matches: usize) -> u32 {
    let n_matches = u32::try_from(n_matches).unwrap_or(u32::MAX);
    let cap = cap.max(1);
    let candidates = [
        1,
        2,
        20,
        21,
        cap,
        cap.saturating_sub(1),
        n_matches,
        n_matches.saturating_add(1),
        n_matches.saturating_sub(1),
        u32::try_from(rng.between(3, 20)).unwrap_or(3),
        u32::try_from(rng.between(21, cap.max(21) as usize)).unwrap_or(21),
    ];
    (*rng.pick(&candidates)).clamp(1, cap)
}

/// A search request.
pub(crate) fn search_request(
    query: Vec<f32>,
    top_k: u32,
    filter: Option<RuntimeFilter>,
    include_content: bool,
) -> Option<SearchRequest> {
    Some(SearchRequest { embedding: Embedding::new(query).ok()?, top_k, filter, include_content })
}
