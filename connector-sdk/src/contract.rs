//! The runtime contract's rules as functions a connector builds on: filter semantics, similarity,
//! the checks a request must pass against what the connector declared, and the shape of a search
//! answer.
//!
//! These are the rules certification holds every connector to, written once. A connector whose
//! store evaluates filters and ranks vectors itself (SQL, a payload index) still uses the request
//! checks and [`SearchResults`]; one that scans its rows in process uses all of it.
//!
//! Nothing here does IO or knows a store, and nothing here decides scope: which rows a query may
//! see is the store's own query, and a hit's scope label comes from the row it was read from.

use std::collections::BTreeSet;

use crate::connector::{SearchRequest, SearchResponse, ShortfallReason};
use crate::manifest::{CapabilityManifest, Distance, VectorSpec};
use crate::{
    ConnectorError, Document, DocumentId, Embedding, FilterExpr, Metadata, Result, RuntimeFilter,
    SearchHit,
};

/// Whether `metadata` satisfies `filter`, with the contract's semantics.
///
/// - `exact` and `in` compare the metadata value as a string, exactly;
/// - `range` reads the value as a number (surrounding white space trimmed, Rust's `f64` syntax)
///   and is false for a value that is not a finite number;
/// - `exact`, `in` and `range` are false when the key is missing, so `not` of them is true there.
///
/// A store that evaluates filters itself must answer exactly as this function does; the
/// certification's filter checks compare against it.
///
/// ```
/// use std::collections::BTreeMap;
/// use kyro_connector_sdk::{FilterExpr, FilterKey, Metadata, filter_matches};
///
/// let metadata = Metadata::new(BTreeMap::from([("year".to_owned(), " 2021 ".to_owned())]))?;
/// let year = FilterKey::new("year")?;
/// let recent = FilterExpr::Range { key: year.clone(), min: Some(2020.0), max: None };
/// assert!(filter_matches(&recent, &metadata));
/// let missing = FilterExpr::Range { key: FilterKey::new("lang")?, min: None, max: Some(1.0) };
/// assert!(filter_matches(&FilterExpr::Not(Box::new(missing)), &metadata));
/// # Ok::<(), kyro_connector_sdk::ValidationError>(())
/// ```
pub fn filter_matches(filter: &FilterExpr, metadata: &Metadata) -> bool {
    match filter {
        FilterExpr::Exact { key, value } => metadata.get(key.as_str()) == Some(value.as_str()),
        FilterExpr::In { key, values } => metadata
            .get(key.as_str())
            .is_some_and(|actual| values.iter().any(|value| value.as_str() == actual)),
        FilterExpr::Range { key, min, max } => metadata
            .get(key.as_str())
            .and_then(|text| text.trim().parse::<f64>().ok())
            .is_some_and(|number| {
                number.is_finite()
                    && min.is_none_or(|min| number >= min)
                    && max.is_none_or(|max| number <= max)
            }),
        FilterExpr::And(children) => children.iter().all(|child| filter_matches(child, metadata)),
        FilterExpr::Or(children) => children.iter().any(|child| filter_matches(child, metadata)),
        FilterExpr::Not(child) => !filter_matches(child, metadata),
    }
}

impl Distance {
    /// The contract's score of `stored` for the query `query`: higher is closer.
    ///
    /// Cosine similarity (0 when either vector is all zeros), the inner product, or the negated
    /// Euclidean distance. A store that ranks vectors itself reports scores on this same scale.
    ///
    /// ```
    /// use kyro_connector_sdk::Distance;
    ///
    /// assert_eq!(Distance::L2.similarity(&[0.0, 3.0], &[4.0, 0.0]), -5.0);
    /// assert_eq!(Distance::InnerProduct.similarity(&[1.0, 2.0], &[3.0, 4.0]), 11.0);
    /// assert_eq!(Distance::Cosine.similarity(&[2.0, 0.0], &[5.0, 0.0]), 1.0);
    /// ```
    pub fn similarity(self, query: &[f32], stored: &[f32]) -> f32 {
        let dot: f32 = query.iter().zip(stored).map(|(a, b)| a * b).sum();
        match self {
            Self::InnerProduct => dot,
            Self::Cosine => {
                let norms = query.iter().map(|a| a * a).sum::<f32>().sqrt()
                    * stored.iter().map(|b| b * b).sum::<f32>().sqrt();
                if norms == 0.0 { 0.0 } else { dot / norms }
            }
            Self::L2 => {
                -query.iter().zip(stored).map(|(a, b)| (a - b) * (a - b)).sum::<f32>().sqrt()
            }
        }
    }
}

impl CapabilityManifest {
    /// The declared dimension and distance.
    ///
    /// # Errors
    ///
    /// `Internal` when none is declared: an opened connector that stores vectors declares them.
    pub fn vector_spec(&self) -> Result<VectorSpec> {
        self.vector.ok_or_else(|| ConnectorError::internal("the connector declares no vector spec"))
    }

    /// Checks a search request against this manifest, in the order a store would meet the
    /// problems: the query's dimension, `top_k`, then the filter ([`Self::check_filter`]).
    ///
    /// ```
    /// # use kyro_connector_sdk::*;
    /// let manifest = CapabilityManifest::closed()
    ///     .with_vector(VectorSpec { dimension: 2, distance: Distance::Cosine })
    ///     .with_caps(Caps { max_top_k: 10, ..Caps::CONTRACT });
    /// let request = SearchRequest {
    ///     embedding: Embedding::new(vec![1.0, 0.0])?,
    ///     top_k: 11,
    ///     filter: None,
    ///     include_content: false,
    /// };
    /// let err = manifest.check_search(&request).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::LimitExceeded);
    /// # Ok::<(), ValidationError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `InvalidRequest` for a query of another dimension; `LimitExceeded` for a `top_k` outside
    /// 1..= the declared cap; `Internal` when no vector spec is declared; and what
    /// [`Self::check_filter`] answers.
    pub fn check_search(&self, request: &SearchRequest) -> Result<()> {
        let vector = self.vector_spec()?;
        if request.embedding.dimension() != vector.dimension as usize {
            return Err(ConnectorError::invalid_request(format!(
                "query embedding has {} dimensions, the store has {}",
                request.embedding.dimension(),
                vector.dimension
            )));
        }
        if request.top_k == 0 || request.top_k > self.caps.max_top_k {
            return Err(ConnectorError::limit_exceeded(format!(
                "top_k {} is outside 1..={}",
                request.top_k, self.caps.max_top_k
            )));
        }
        match &request.filter {
            Some(filter) => self.check_filter(filter),
            None => Ok(()),
        }
    }

    /// Checks a filter against this manifest: its node count against the declared cap, and every
    /// key against the declared filterable keys.
    ///
    /// # Errors
    ///
    /// `LimitExceeded` past the node cap; `InvalidRequest` naming the first undeclared key.
    pub fn check_filter(&self, filter: &RuntimeFilter) -> Result<()> {
        if filter.n_nodes() > self.caps.max_filter_nodes as usize {
            return Err(ConnectorError::limit_exceeded(format!(
                "filter has {} nodes, over the cap of {}",
                filter.n_nodes(),
                self.caps.max_filter_nodes
            )));
        }
        for key in filter.keys() {
            if !self.filterable_keys.allows(key) {
                return Err(ConnectorError::invalid_request(format!(
                    "filter key {key} is not declared filterable"
                )));
            }
        }
        Ok(())
    }

    /// Checks a fetch's id list against the declared cap.
    ///
    /// # Errors
    ///
    /// `LimitExceeded` for more ids than the cap.
    pub fn check_fetch(&self, ids: &[DocumentId]) -> Result<()> {
        if ids.len() > self.caps.max_fetch_ids as usize {
            return Err(ConnectorError::limit_exceeded(format!(
                "fetch of {} ids is over the cap of {}",
                ids.len(),
                self.caps.max_fetch_ids
            )));
        }
        Ok(())
    }

    /// The embedding a write needs, checked against the declared dimension
    /// (see [`crate::document_embedding`]).
    ///
    /// # Errors
    ///
    /// `InvalidRequest` when the document has no embedding or one of another dimension;
    /// `Internal` when no vector spec is declared.
    pub fn check_document<'d>(&self, document: &'d Document) -> Result<&'d Embedding> {
        crate::document_embedding(document, self.vector_spec()?.dimension)
    }
}

/// A search answer in the making: collect the hits a store found, then [`finish`](Self::finish)
/// them into the contract's [`SearchResponse`].
///
/// `finish` sorts nearest first (ties by document id, so answers are deterministic), keeps at most
/// `top_k`, refuses an answer whose content exceeds the declared `max_response_bytes` with
/// `LimitExceeded` (never by dropping hits), and reports a shortfall when fewer than `top_k`
/// hits remain. Hits carry content only when the request asked for it.
///
/// ```
/// # use kyro_connector_sdk::*;
/// # fn hit(id: &str, score: f32) -> SearchHit {
/// #     SearchHit {
/// #         document: StoredDocument {
/// #             scope: Scope::new("acme", "support").unwrap(),
/// #             id: DocumentId::new(id).unwrap(),
/// #             content: Some(format!("content of {id}")),
/// #             metadata: Metadata::default(),
/// #             revision: None,
/// #             watermark: None,
/// #         },
/// #         score,
/// #     }
/// # }
/// let manifest = CapabilityManifest::closed()
///     .with_vector(VectorSpec { dimension: 2, distance: Distance::Cosine });
/// let request = SearchRequest {
///     embedding: Embedding::new(vec![1.0, 0.0])?,
///     top_k: 3,
///     filter: None,
///     include_content: false,
/// };
/// let mut results = SearchResults::new(&request, &manifest);
/// results.push(hit("far", 0.1));
/// results.push(hit("near", 0.9));
/// assert!(results.is_short());
/// // A linear scan saw every row, so the short list is complete.
/// let response = results.finish(ShortfallReason::Exhausted)?;
/// assert_eq!(response.hits[0].document.id.as_str(), "near");
/// assert_eq!(response.hits[0].document.content, None);
/// assert_eq!(response.shortfall.map(|shortfall| shortfall.returned), Some(2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SearchResults {
    hits: Vec<SearchHit>,
    top_k: u32,
    include_content: bool,
    max_content_bytes: u64,
}

impl SearchResults {
    /// An empty answer to `request`, bounded by `manifest`'s caps.
    pub fn new(request: &SearchRequest, manifest: &CapabilityManifest) -> Self {
        Self {
            hits: Vec::new(),
            top_k: request.top_k,
            include_content: request.include_content,
            max_content_bytes: manifest.caps.max_response_bytes,
        }
    }

    /// Adds a hit the store found. Its content is dropped unless the request asked for it.
    pub fn push(&mut self, mut hit: SearchHit) {
        if !self.include_content {
            hit.document.content = None;
        }
        self.hits.push(hit);
    }

    /// How many hits were added so far.
    pub fn len(&self) -> usize {
        self.hits.len()
    }

    /// Whether no hit was added.
    pub fn is_empty(&self) -> bool {
        self.hits.is_empty()
    }

    /// Whether fewer than `top_k` hits were added: the answer will report a shortfall, and the
    /// connector must say why (see [`ShortfallReason`]).
    pub fn is_short(&self) -> bool {
        self.hits.len() < self.top_k as usize
    }

    /// The contract's answer: nearest first, at most `top_k`, a shortfall with `reason` when
    /// short (`reason` is ignored otherwise).
    ///
    /// # Errors
    ///
    /// `LimitExceeded` when the kept hits hold more content than the declared
    /// `max_response_bytes`; `Internal` when the store returned one document twice.
    pub fn finish(mut self, reason: ShortfallReason) -> Result<SearchResponse> {
        self.hits.sort_by(|left, right| {
            right
                .score
                .total_cmp(&left.score)
                .then_with(|| left.document.id.cmp(&right.document.id))
        });
        self.hits.truncate(self.top_k as usize);
        let mut ids = BTreeSet::new();
        let mut content_bytes = 0_u64;
        for hit in &self.hits {
            if !ids.insert(&hit.document.id) {
                return Err(ConnectorError::internal(format!(
                    "the store returned document {} twice",
                    hit.document.id
                )));
            }
            content_bytes +=
                hit.document.content.as_ref().map_or(0, |content| content.len() as u64);
        }
        if content_bytes > self.max_content_bytes {
            return Err(ConnectorError::limit_exceeded(format!(
                "response would hold {content_bytes} bytes of content, over the cap of {}",
                self.max_content_bytes
            )));
        }
        Ok(SearchResponse::new(self.hits, self.top_k, reason))
    }
}

impl Extend<SearchHit> for SearchResults {
    fn extend<I: IntoIterator<Item = SearchHit>>(&mut self, hits: I) {
        for hit in hits {
            self.push(hit);
        }
    }
}

#[cfg(test)]
mod tests;
