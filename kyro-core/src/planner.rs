//! The freshness planner: pure, deterministic decisions about one retrieve.
//!
//! The host gathers facts (the store's ownership and certification, what the durable ledger
//! says, the reuse cache's entry, the connector's answer) and passes them in as values; the
//! planner says whether to block, reuse or fetch, which backend items to prune as stale, and what
//! the packet's status, warnings and diagnostics are. It never does IO and never reads a clock:
//! the contract's §6 is implemented here and only here.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::change::{ChangeScope, ChangeTarget, ChangeType};
use crate::document::{DocumentId, Metadata, Revision};
use crate::freshness::{FreshnessMode, OwnershipMode, Watermark};

#[cfg(test)]
mod tests;

/// A stable 64-bit fingerprint (FNV-1a over length-prefixed fields), printed as 16 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Fingerprint(pub u64);

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Builds a [`Fingerprint`] field by field. Each field is length-prefixed, so `("ab", "c")` and
/// `("a", "bc")` differ, and absent optional fields differ from empty ones.
#[derive(Debug, Clone)]
pub struct Fingerprinter {
    state: u64,
}

impl Default for Fingerprinter {
    fn default() -> Self {
        Self { state: 0xcbf2_9ce4_8422_2325 }
    }
}

impl Fingerprinter {
    fn bytes(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.state ^= u64::from(*byte);
            self.state = self.state.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// Adds one field.
    pub fn field(&mut self, value: &str) -> &mut Self {
        self.bytes(&(value.len() as u64).to_le_bytes());
        self.bytes(value.as_bytes());
        self
    }

    /// Adds one optional field; `None` is distinct from every string.
    pub fn optional(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(value) => {
                self.bytes(&[1]);
                self.field(value)
            }
            None => {
                self.bytes(&[0]);
                self
            }
        }
    }

    /// The fingerprint so far.
    pub fn finish(&self) -> Fingerprint {
        Fingerprint(self.state)
    }
}

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
    fn invalidate_by_scan(&mut self, invalidation: &Invalidation, generation: u64) -> usize {
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

/// The contract's diagnostic codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiagnosticCode {
    /// Stale reuse was served (eventual, or balanced fallback).
    StaleReuseServed,
    /// The store has no watermark; the runtime generation is the proof.
    WatermarkUnavailable,
    /// A watermark was missing for an item; the generation was used instead.
    WatermarkGenerationFallback,
    /// The store lags behind what the ledger acknowledged.
    WatermarkGenerationLag,
    /// The store is ahead of the ledger.
    WatermarkGenerationAhead,
    /// The watermark or ledger lookup failed.
    WatermarkLookupFailed,
    /// The store does not declare what the request needs.
    ConnectorCapabilityMismatch,
    /// The connector returned something outside the requested scope.
    ConnectorScopeViolation,
    /// The freshness proof could not be validated.
    ProofValidationFailed,
    /// Strict evidence is not available for this store.
    StrictEvidenceUnavailable,
    /// The generation moved while the retrieve ran.
    GenerationAdvancedDuringRetrieval,
    /// Planner state could not be persisted.
    PlannerStatePersistenceFailed,
    /// `required_generation` is above the current generation.
    RequiredGenerationUnsatisfied,
    /// A guard rejected an item.
    ContextGuardRejected,
    /// A deleted or unpublished document was pruned.
    TombstonePruned,
}

impl DiagnosticCode {
    /// Whether this code makes the freshness proof invalid rather than merely weaker.
    pub fn invalidates_proof(self) -> bool {
        matches!(
            self,
            Self::ConnectorScopeViolation
                | Self::ProofValidationFailed
                | Self::StrictEvidenceUnavailable
                | Self::WatermarkLookupFailed
                | Self::RequiredGenerationUnsatisfied
        )
    }
}

/// How serious a note is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For the record.
    Info,
    /// The answer is weaker than asked for.
    Warning,
    /// The answer could not be given.
    Error,
}

/// A diagnostic with its human message; warnings in the packet are the messages of the
/// warning- and error-level notes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// The code.
    pub code: DiagnosticCode,
    /// How serious it is.
    pub severity: Severity,
    /// What happened, for people.
    pub message: String,
}

impl Note {
    fn new(code: DiagnosticCode, severity: Severity, message: impl Into<String>) -> Self {
        Self { code, severity, message: message.into() }
    }
}

/// What the host knows about the store serving a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StoreFacts {
    /// The configured ownership mode.
    pub ownership: OwnershipMode,
    /// Whether the store was certified for that mode (a refused store never serves at all).
    pub certified: bool,
}

/// What the durable ledger says for a request's scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LedgerFacts {
    /// The current runtime generation.
    pub current_generation: u64,
    /// The latest generation of any change covering the request's scope (0 when none).
    pub scope_generation: u64,
}

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Answer `stale_blocked` with no items.
    Block,
    /// Serve the cached entry; `stale` when a change covered it since it was filled.
    Reuse {
        /// Whether the entry is stale (served only in eventual mode, flagged).
        stale: bool,
    },
    /// Ask the backend. `fallback` when a stale entry may be served if the backend fails.
    Fetch {
        /// Whether the cached stale entry may be served, degraded, if the backend fails.
        fallback: bool,
    },
}

/// The planner's decision before any backend call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The mode the retrieve is served in.
    pub served_mode: FreshnessMode,
    /// What to do.
    pub action: Action,
    /// Diagnostics so far.
    pub notes: Vec<Note>,
}

/// Whether a cached entry is fresh for the ledger: filled at or after the latest change covering
/// its scope, and not marked by an invalidation since.
pub fn entry_is_fresh(entry: &CacheEntry, ledger: &LedgerFacts) -> bool {
    entry.invalidated_at.is_none() && entry.generation >= ledger.scope_generation
}

/// Decides how to serve a retrieve (contract §6).
///
/// `ledger` is `None` when the ledger could not be read; `entry` is the reuse cache's entry for
/// the request's fingerprint, if any.
pub fn decide(
    requested: FreshnessMode,
    production: bool,
    store: StoreFacts,
    ledger: Option<LedgerFacts>,
    required_generation: Option<u64>,
    entry: Option<&CacheEntry>,
) -> Decision {
    let mut notes = Vec::new();
    let mut served = requested;
    if requested == FreshnessMode::Strict && !store.ownership.is_strict_eligible() {
        if production {
            notes.push(Note::new(
                DiagnosticCode::StrictEvidenceUnavailable,
                Severity::Error,
                "strict freshness needs a write_through, event_feed or snapshot_bundle store; this store is best_effort",
            ));
            return Decision { served_mode: requested, action: Action::Block, notes };
        }
        served = FreshnessMode::Balanced;
        notes.push(Note::new(
            DiagnosticCode::ConnectorCapabilityMismatch,
            Severity::Warning,
            "strict was downgraded to balanced: the store is best_effort (development mode)",
        ));
    }
    if served == FreshnessMode::Strict && !store.certified {
        notes.push(Note::new(
            DiagnosticCode::StrictEvidenceUnavailable,
            Severity::Error,
            "strict freshness needs a store certified for its ownership mode",
        ));
        return Decision { served_mode: served, action: Action::Block, notes };
    }
    let Some(ledger) = ledger else {
        notes.push(Note::new(
            DiagnosticCode::WatermarkLookupFailed,
            Severity::Error,
            "the freshness ledger could not be read",
        ));
        return match served {
            FreshnessMode::Strict => Decision { served_mode: served, action: Action::Block, notes },
            FreshnessMode::Balanced => Decision {
                served_mode: served,
                action: Action::Fetch { fallback: entry.is_some() },
                notes,
            },
            FreshnessMode::Eventual => {
                let action = if entry.is_some() {
                    Action::Reuse { stale: true }
                } else {
                    Action::Fetch { fallback: false }
                };
                Decision { served_mode: served, action, notes }
            }
        };
    };
    if let Some(required) = required_generation
        && required > ledger.current_generation
    {
        notes.push(Note::new(
            DiagnosticCode::RequiredGenerationUnsatisfied,
            if served == FreshnessMode::Strict { Severity::Error } else { Severity::Warning },
            format!(
                "required_generation {required} is above the current generation {}",
                ledger.current_generation
            ),
        ));
        if served == FreshnessMode::Strict {
            return Decision { served_mode: served, action: Action::Block, notes };
        }
    }
    let fresh = entry.is_some_and(|entry| entry_is_fresh(entry, &ledger));
    let action = match (served, entry, fresh) {
        (_, Some(_), true) => Action::Reuse { stale: false },
        (FreshnessMode::Eventual, Some(_), false) => {
            notes.push(Note::new(
                DiagnosticCode::StaleReuseServed,
                Severity::Warning,
                "stale reusable context was served without a fetch (eventual)",
            ));
            Action::Reuse { stale: true }
        }
        (FreshnessMode::Balanced, Some(_), false) => Action::Fetch { fallback: true },
        _ => Action::Fetch { fallback: false },
    };
    Decision { served_mode: served, action, notes }
}

/// What the ledger acknowledged about one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentFacts {
    /// The generation of the latest acknowledged change to it.
    pub generation: u64,
    /// The revision that change named.
    pub revision: Option<String>,
    /// The store watermark a write-through ACK reported.
    pub watermark: Option<u64>,
    /// Whether it was deleted or unpublished.
    pub tombstone: bool,
    /// The change event's timestamp, in milliseconds since the epoch.
    pub event_timestamp_ms: Option<i64>,
}

/// What to do with one backend item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemVerdict {
    /// Nothing acknowledged about it is newer than what the store returned.
    Keep,
    /// Older than what the ledger acknowledged: never served in strict or balanced.
    Stale {
        /// Why, for the omission's detail.
        detail: String,
        /// The generation of the change it is older than.
        stale_at_generation: u64,
        /// Whether the acknowledged change was a deletion.
        tombstone: bool,
    },
}

/// Compares two revisions: numerically when both are integers, otherwise equality only.
fn revision_at_least(actual: &str, acknowledged: &str) -> bool {
    match (actual.parse::<u128>(), acknowledged.parse::<u128>()) {
        (Ok(actual), Ok(acknowledged)) => actual >= acknowledged,
        _ => actual == acknowledged,
    }
}

/// Checks one backend item against what the ledger acknowledged for its document.
///
/// Evidence, strongest first: the acknowledged revision against the item's revision; the store
/// watermark a write-through ACK reported against the item's row watermark; the change event's
/// timestamp against the row's watermark (microseconds). Evidence the item cannot be compared
/// with prunes it: it cannot be proven fresh. A tombstone
/// prunes the item unless the item carries a revision newer than the deletion's.
pub fn assess_item(
    revision: Option<&Revision>,
    watermark: Option<Watermark>,
    facts: &DocumentFacts,
) -> ItemVerdict {
    let stale = |detail: String| ItemVerdict::Stale {
        detail,
        stale_at_generation: facts.generation,
        tombstone: facts.tombstone,
    };
    if facts.tombstone {
        // Only evidence of a newer write than the deletion brings the document back.
        let newer_revision = matches!((revision, &facts.revision), (Some(actual), Some(deleted))
            if actual.as_str() != deleted && revision_at_least(actual.as_str(), deleted));
        let newer_watermark = matches!((watermark, facts.watermark), (Some(actual), Some(deleted)) if actual.value() > deleted);
        return if newer_revision || newer_watermark {
            ItemVerdict::Keep
        } else {
            stale("the document was deleted or unpublished".to_owned())
        };
    }
    // Compare like with like: revisions when both sides have one, then store watermarks.
    if let (Some(actual), Some(acknowledged)) = (revision, &facts.revision) {
        return if revision_at_least(actual.as_str(), acknowledged) {
            ItemVerdict::Keep
        } else {
            stale(format!(
                "revision {} is older than the acknowledged {acknowledged}",
                actual.as_str()
            ))
        };
    }
    if let (Some(actual), Some(acknowledged)) = (watermark, facts.watermark) {
        return if actual.value() >= acknowledged {
            ItemVerdict::Keep
        } else {
            stale(format!(
                "store watermark {} is older than the acknowledged {acknowledged}",
                actual.value()
            ))
        };
    }
    if let Some(acknowledged) = &facts.revision {
        return stale(format!(
            "the store returned no revision; revision {acknowledged} was acknowledged"
        ));
    }
    if let Some(acknowledged) = facts.watermark {
        return stale(format!(
            "the store returned no watermark; watermark {acknowledged} was acknowledged"
        ));
    }
    if let Some(timestamp_ms) = facts.event_timestamp_ms {
        let acknowledged_micros = u64::try_from(timestamp_ms).unwrap_or(0).saturating_mul(1000);
        return match watermark {
            Some(actual) if actual.value() >= acknowledged_micros => ItemVerdict::Keep,
            _ => stale("the change event carries no revision and the row predates it".to_owned()),
        };
    }
    stale(
        "a change was acknowledged without revision or timestamp; the item cannot be proven newer"
            .to_owned(),
    )
}

/// A packet's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PacketStatus {
    /// Everything asked for, proven fresh for the served mode.
    Complete,
    /// Fresh, but items were pruned or the backend returned fewer than asked.
    Partial,
    /// Served with weaker evidence than asked for (stale fallback, downgrade, unsatisfied generation).
    Degraded,
    /// Refused: freshness could not be proven.
    StaleBlocked,
}

impl PacketStatus {
    /// The contract's snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Partial => "partial",
            Self::Degraded => "degraded",
            Self::StaleBlocked => "stale_blocked",
        }
    }
}

/// The packet status from what happened.
pub fn packet_status(blocked: bool, degraded: bool, n_pruned: usize, short: bool) -> PacketStatus {
    if blocked {
        PacketStatus::StaleBlocked
    } else if degraded {
        PacketStatus::Degraded
    } else if n_pruned > 0 || short {
        PacketStatus::Partial
    } else {
        PacketStatus::Complete
    }
}
