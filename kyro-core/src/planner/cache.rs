//! The reuse cache: answers kept by fingerprint, and which of them a change covers.
//!
//! Entries are indexed by namespace and by the documents they hold, so the common changes find
//! the entries they cover without scanning; coarser changes scan. The cache never decides
//! freshness itself: [`super::decide`] does, from the entry and the ledger.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::Fingerprint;
use crate::change::{ChangeScope, ChangeTarget, ChangeType};
use crate::document::{DocumentId, Metadata, Revision};
use crate::freshness::Watermark;

/// One item as the reuse cache keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CachedItem {
    /// The document id.
    pub id: DocumentId,
    /// The similarity the backend reported.
    pub score: f32,
    /// The content, when the request asked for it.
    pub content: Option<String>,
    /// The metadata.
    pub metadata: Metadata,
    /// The source revision, when the store keeps one.
    pub revision: Option<Revision>,
    /// The store's row watermark, when it has one.
    pub watermark: Option<Watermark>,
    /// When the backend returned it (milliseconds since the epoch).
    pub retrieved_at_ms: i64,
}

/// A reusable answer for one scope fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheEntry {
    /// The items, ranked.
    pub items: Vec<CachedItem>,
    /// The runtime generation the answer was fetched at.
    pub generation: u64,
    /// The tenant it belongs to.
    pub tenant_id: String,
    /// The namespace it belongs to.
    pub namespace: String,
    /// The store it came from.
    pub store_id: String,
    /// The generation of the first change that covered it; a covered entry is never reused
    /// as fresh, only as flagged stale context (eventual, or balanced when the backend fails).
    pub invalidated_at: Option<u64>,
}

impl CacheEntry {
    fn is_covered_by(&self, invalidation: &Invalidation) -> bool {
        match invalidation {
            Invalidation::All => true,
            Invalidation::Tenant { tenant_id } => &self.tenant_id == tenant_id,
            Invalidation::Namespace { tenant_id, namespace } => {
                &self.namespace == namespace
                    && tenant_id.as_ref().is_none_or(|tenant_id| &self.tenant_id == tenant_id)
            }
            Invalidation::Document { tenant_id, namespace, doc_id } => {
                &self.tenant_id == tenant_id
                    && &self.namespace == namespace
                    && self.items.iter().any(|item| item.id.as_str() == doc_id)
            }
            Invalidation::Store { store_id } => &self.store_id == store_id,
        }
    }
}

/// Which cache entries a change covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Invalidation {
    /// Every entry.
    All,
    /// Every entry of a tenant.
    Tenant {
        /// The tenant.
        tenant_id: String,
    },
    /// Every entry of a namespace, in one tenant or in all.
    Namespace {
        /// The tenant, when the change names one.
        tenant_id: Option<String>,
        /// The namespace.
        namespace: String,
    },
    /// Every entry holding one document.
    Document {
        /// The tenant.
        tenant_id: String,
        /// The namespace.
        namespace: String,
        /// The document id.
        doc_id: String,
    },
    /// Every entry from one store.
    Store {
        /// The store id.
        store_id: String,
    },
}

impl Invalidation {
    /// What a change of this kind to `target` covers: as [`Invalidation::for_target`], except
    /// that a document change that may reorder results (see
    /// [`crate::change::ChangeType::may_reorder_results`]) covers its whole namespace.
    pub fn for_change(target: &ChangeTarget, scope: &ChangeScope, kind: ChangeType) -> Self {
        match (target, &scope.tenant_id, &scope.namespace) {
            (ChangeTarget::Document { .. }, Some(tenant_id), Some(namespace))
                if kind.may_reorder_results() =>
            {
                Self::Namespace { tenant_id: Some(tenant_id.clone()), namespace: namespace.clone() }
            }
            _ => Self::for_target(target, scope),
        }
    }

    /// What a change event or invalidation target covers. Policy and bundle changes cover their
    /// tenant (or everything): the cache cannot tell which answers a policy shaped.
    pub fn for_target(target: &ChangeTarget, scope: &ChangeScope) -> Self {
        let tenant_or_all =
            || scope.tenant_id.clone().map_or(Self::All, |tenant_id| Self::Tenant { tenant_id });
        match target {
            ChangeTarget::Document { doc_id } => match (&scope.tenant_id, &scope.namespace) {
                (Some(tenant_id), Some(namespace)) => Self::Document {
                    tenant_id: tenant_id.clone(),
                    namespace: namespace.clone(),
                    doc_id: doc_id.clone(),
                },
                _ => tenant_or_all(),
            },
            ChangeTarget::Namespace { namespace } => {
                Self::Namespace { tenant_id: scope.tenant_id.clone(), namespace: namespace.clone() }
            }
            ChangeTarget::Connector { connector_id } => {
                Self::Store { store_id: connector_id.clone() }
            }
            ChangeTarget::Tenant { tenant_id } => Self::Tenant { tenant_id: tenant_id.clone() },
            ChangeTarget::Bundle { .. } | ChangeTarget::Policy { .. } => tenant_or_all(),
            ChangeTarget::All => Self::All,
        }
    }
}

/// A bounded, least-recently-used reuse cache keyed by scope fingerprint.
///
/// Entries are indexed by their namespace and by the documents they hold, so the common
/// changes (to a document, or to one tenant's namespace) find the entries they cover without
/// scanning the cache; coarser ones (a namespace in every tenant, a tenant, a store,
/// everything) scan it.
#[derive(Debug)]
pub struct ReuseCache {
    capacity: usize,
    entries: HashMap<Fingerprint, (CacheEntry, u64)>,
    recency: BTreeMap<u64, Fingerprint>,
    next_tick: u64,
    by_document: HashMap<DocumentRef, BTreeSet<Fingerprint>>,
    by_namespace: HashMap<(String, String), BTreeSet<Fingerprint>>,
}

/// A document as the cache indexes it: tenant, namespace, id.
type DocumentRef = (String, String, String);

/// Marks the fresh entries among `listed` as invalidated at `generation`; returns how many.
fn mark_listed(
    entries: &mut HashMap<Fingerprint, (CacheEntry, u64)>,
    listed: Option<&BTreeSet<Fingerprint>>,
    generation: u64,
) -> usize {
    let mut n_invalidated = 0;
    for fingerprint in listed.into_iter().flatten() {
        if let Some((entry, _)) = entries.get_mut(fingerprint)
            && entry.invalidated_at.is_none()
        {
            entry.invalidated_at = Some(generation);
            n_invalidated += 1;
        }
    }
    n_invalidated
}

/// Removes `fingerprint` from the set indexed under `key`, and the set once empty.
fn unindex<K: std::hash::Hash + Eq>(
    index: &mut HashMap<K, BTreeSet<Fingerprint>>,
    key: &K,
    fingerprint: Fingerprint,
) {
    if let Some(listed) = index.get_mut(key) {
        listed.remove(&fingerprint);
        if listed.is_empty() {
            index.remove(key);
        }
    }
}

fn document_refs(entry: &CacheEntry) -> impl Iterator<Item = DocumentRef> + '_ {
    entry
        .items
        .iter()
        .map(|item| (entry.tenant_id.clone(), entry.namespace.clone(), item.id.as_str().to_owned()))
}

impl ReuseCache {
    /// An empty cache holding at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: HashMap::new(),
            recency: BTreeMap::new(),
            next_tick: 0,
            by_document: HashMap::new(),
            by_namespace: HashMap::new(),
        }
    }

    /// The entry for `fingerprint` when it was cached for this tenant, namespace and store,
    /// marked as recently used. The scope is compared, not trusted to the fingerprint: an
    /// entry is never served across tenants, whatever two requests hash to.
    pub fn get_scoped(
        &mut self,
        fingerprint: Fingerprint,
        tenant_id: &str,
        namespace: &str,
        store_id: &str,
    ) -> Option<&CacheEntry> {
        self.get(fingerprint).filter(|entry| {
            entry.tenant_id == tenant_id
                && entry.namespace == namespace
                && entry.store_id == store_id
        })
    }

    /// The entry for `fingerprint`, marked as recently used.
    pub fn get(&mut self, fingerprint: Fingerprint) -> Option<&CacheEntry> {
        let tick = self.next_tick;
        let (_, last_used) = self.entries.get_mut(&fingerprint)?;
        self.recency.remove(last_used);
        *last_used = tick;
        self.recency.insert(tick, fingerprint);
        self.next_tick += 1;
        self.entries.get(&fingerprint).map(|(entry, _)| entry)
    }

    /// Stores an entry, evicting the least recently used one when full.
    pub fn insert(&mut self, fingerprint: Fingerprint, entry: CacheEntry) {
        self.remove(fingerprint);
        while self.entries.len() >= self.capacity {
            let Some((_, oldest)) = self.recency.pop_first() else { break };
            self.remove(oldest);
        }
        let tick = self.next_tick;
        self.next_tick += 1;
        self.recency.insert(tick, fingerprint);
        for document in document_refs(&entry) {
            self.by_document.entry(document).or_default().insert(fingerprint);
        }
        self.by_namespace
            .entry((entry.tenant_id.clone(), entry.namespace.clone()))
            .or_default()
            .insert(fingerprint);
        self.entries.insert(fingerprint, (entry, tick));
    }

    fn remove(&mut self, fingerprint: Fingerprint) {
        let Some((entry, last_used)) = self.entries.remove(&fingerprint) else { return };
        self.recency.remove(&last_used);
        for document in document_refs(&entry) {
            unindex(&mut self.by_document, &document, fingerprint);
        }
        unindex(&mut self.by_namespace, &(entry.tenant_id, entry.namespace), fingerprint);
    }

    /// Marks every fresh entry the change covers as invalidated at `generation` and returns how
    /// many it marked.
    pub fn invalidate(&mut self, invalidation: &Invalidation, generation: u64) -> usize {
        match invalidation {
            // Every listed entry ends up invalidated, and an invalidated entry is never marked
            // again, so the list is taken out of the index: a busy namespace's next change
            // walks only the entries cached since.
            Invalidation::Document { tenant_id, namespace, doc_id } => {
                let document = (tenant_id.clone(), namespace.clone(), doc_id.clone());
                let holders = self.by_document.remove(&document);
                mark_listed(&mut self.entries, holders.as_ref(), generation)
            }
            Invalidation::Namespace { tenant_id: Some(tenant_id), namespace } => {
                let key = (tenant_id.clone(), namespace.clone());
                let members = self.by_namespace.remove(&key);
                mark_listed(&mut self.entries, members.as_ref(), generation)
            }
            _ => self.invalidate_by_scan(invalidation, generation),
        }
    }

    /// [`ReuseCache::invalidate`] by looking at every entry.
    pub(super) fn invalidate_by_scan(
        &mut self,
        invalidation: &Invalidation,
        generation: u64,
    ) -> usize {
        let mut n_invalidated = 0;
        for (entry, _) in self.entries.values_mut() {
            if entry.invalidated_at.is_none() && entry.is_covered_by(invalidation) {
                entry.invalidated_at = Some(generation);
                n_invalidated += 1;
            }
        }
        n_invalidated
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
