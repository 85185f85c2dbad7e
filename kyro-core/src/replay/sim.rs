//! The replay simulator: a planner state (generation, scope generations, processed events,
//! document facts, a reuse cache) advanced step by step, each retrieve decided and settled by
//! the planner exactly as the serving path does, with the captured backend answer standing in
//! for the backend.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    Candidate, Observed, PrimerState, ReplayRecord, SimStep, StepPlan, StepStatus, StepType,
};
use crate::document::{DocumentId, Metadata, Revision};
use crate::freshness::{FreshnessMode, OwnershipMode, Watermark};
use crate::planner::{
    Answer, Backend, CacheEntry, CachedItem, CheckedHits, DocumentFacts, Fingerprint, LedgerAfter,
    LedgerFacts, ReuseCache, SettleInput, ShortAnswer, StoreFacts, decide, refresh_entry, settle,
};

/// Re-runs `steps` against a planner state seeded from `primer`, with each retrieve's captured
/// backend answer standing in for the backend, and returns what each step would have answered.
pub fn simulate(primer: &PrimerState, steps: &[SimStep]) -> Vec<ReplayRecord> {
    let mut state = SimState {
        generation: primer.current_generation,
        scopes: primer.scope_generations.clone(),
        processed: primer.processed_change_events.clone(),
        documents: BTreeMap::new(),
        cache: ReuseCache::new(4096),
    };
    steps.iter().map(|step| state.run(step)).collect()
}

/// The facts one retrieve is decided and settled on, however they were gathered.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrieveFacts {
    /// The freshness mode asked for.
    pub requested: FreshnessMode,
    /// Whether the host runs in production mode.
    pub production: bool,
    /// The serving store's ownership mode (it is certified: refused stores never serve).
    pub ownership: OwnershipMode,
    /// The request's `required_generation`.
    pub required_generation: Option<u64>,
    /// What the ledger said before the retrieve; `None` when unreadable.
    pub ledger: Option<LedgerFacts>,
    /// The reuse cache's entry, not yet refreshed.
    pub entry: Option<CacheEntry>,
    /// The ledger's generations of the entry's documents.
    pub entry_document_generations: Vec<u64>,
    /// The backend's checked answer, when the retrieve fetched.
    pub candidates: Vec<Candidate>,
    /// Whether that answer was short.
    pub short: Option<ShortAnswer>,
    /// The ledger's facts of the candidates' documents after the fetch; `None` when unreadable.
    pub ledger_after: Option<LedgerAfter>,
    /// Whom a new cache entry belongs to: `(tenant_id, namespace, store_id)`.
    pub owner: (String, String, String),
}

/// Decides and settles one retrieve from its facts, as a replay records it: the record's
/// status, generation and observed answer, and the entry to cache, if any.
pub fn replay_retrieve(facts: &RetrieveFacts) -> (StepStatus, u64, Observed, Option<CacheEntry>) {
    let entry =
        facts.entry.clone().map(|entry| refresh_entry(entry, &facts.entry_document_generations));
    let decision = decide(
        facts.requested,
        facts.production,
        StoreFacts { ownership: facts.ownership, certified: true },
        facts.ledger,
        facts.required_generation,
        entry.as_ref(),
    );
    let generation = facts.ledger.map_or(0, |ledger| ledger.current_generation);
    let backend = Backend::Answered(Answer {
        hits: CheckedHits {
            items: facts.candidates.iter().filter_map(cached_item).collect(),
            ..CheckedHits::default()
        },
        short: facts.short,
        ledger_after: facts.ledger_after.clone(),
    });
    let (owner_tenant, owner_namespace, owner_store) = &facts.owner;
    let settled = settle(SettleInput {
        decision: &decision,
        entry: entry.as_ref(),
        generation,
        backend: &backend,
        owner: (owner_tenant, owner_namespace, owner_store),
    });
    match settled {
        Ok(settlement) => {
            let observed = Observed::of(&settlement, facts.requested, facts.ownership);
            (settlement.status.into(), generation, observed, settlement.cache_entry)
        }
        // A captured answer never fails: the backend answered when the step ran.
        Err(_) => (StepStatus::StaleBlocked, generation, Observed::default(), None),
    }
}

struct SimState {
    generation: u64,
    scopes: BTreeMap<String, u64>,
    processed: BTreeSet<String>,
    documents: BTreeMap<(String, String, String), DocumentFacts>,
    cache: ReuseCache,
}

impl SimState {
    fn run(&mut self, step: &SimStep) -> ReplayRecord {
        let mut record = ReplayRecord {
            step_index: step.step_index,
            label: step.label.clone(),
            step_type: step.step_type,
            status: StepStatus::Accepted,
            generation: self.generation,
            observed: Observed::default(),
        };
        match &step.plan {
            StepPlan::Change { source_event_id, scope_keys, documents, invalidation } => {
                if let Some(id) = source_event_id
                    && !self.processed.insert(id.clone())
                {
                    record.observed.deduplicated = true;
                    return record;
                }
                self.generation += 1;
                for key in scope_keys {
                    self.scopes.insert(key.clone(), self.generation);
                }
                for document in documents {
                    let key = (
                        document.tenant_id.clone(),
                        document.namespace.clone(),
                        document.doc_id.clone(),
                    );
                    let incoming = DocumentFacts {
                        generation: self.generation,
                        revision: document.revision.clone(),
                        watermark: document.watermark,
                        tombstone: document.tombstone,
                        event_timestamp_ms: document.event_timestamp_ms,
                    };
                    // The same merge the state store applies: facts only move forward.
                    let merged = crate::ledger::merge(self.documents.get(&key), &incoming);
                    self.documents.insert(key, merged.facts);
                }
                self.cache.invalidate(invalidation, self.generation);
                record.generation = self.generation;
            }
            StepPlan::Retrieve { .. } => {
                debug_assert_eq!(step.step_type, StepType::Retrieve);
                let (status, generation, observed) = self.retrieve(&step.plan);
                record.status = status;
                record.generation = generation;
                record.observed = observed;
            }
        }
        record
    }

    fn retrieve(&mut self, plan: &StepPlan) -> (StepStatus, u64, Observed) {
        let StepPlan::Retrieve {
            fingerprint,
            requested_mode,
            production,
            store_id,
            ownership,
            required_generation,
            read_keys,
            tenant_id,
            namespace,
            candidates,
            short,
        } = plan
        else {
            return (StepStatus::StaleBlocked, self.generation, Observed::default());
        };
        let doc_key = |id: &str| (tenant_id.clone(), namespace.clone(), id.to_owned());
        let fingerprint = Fingerprint(*fingerprint);
        let entry = self.cache.get_scoped(fingerprint, tenant_id, namespace, store_id).cloned();
        let entry_document_generations = entry
            .iter()
            .flat_map(|entry| &entry.items)
            .filter_map(|item| self.documents.get(&doc_key(item.id.as_str())))
            .map(|facts| facts.generation)
            .collect();
        let ledger_after = LedgerAfter {
            current_generation: self.generation,
            documents: candidates
                .iter()
                .filter_map(|candidate| {
                    let facts = self.documents.get(&doc_key(&candidate.id))?;
                    Some((candidate.id.clone(), facts.clone()))
                })
                .collect(),
        };
        let facts = RetrieveFacts {
            requested: *requested_mode,
            production: *production,
            ownership: *ownership,
            required_generation: *required_generation,
            ledger: Some(LedgerFacts {
                current_generation: self.generation,
                scope_generation: read_keys
                    .iter()
                    .filter_map(|key| self.scopes.get(key))
                    .copied()
                    .max()
                    .unwrap_or(0),
            }),
            entry,
            entry_document_generations,
            candidates: candidates.clone(),
            short: *short,
            ledger_after: Some(ledger_after),
            owner: (tenant_id.clone(), namespace.clone(), store_id.clone()),
        };
        let (status, generation, observed, cache_entry) = replay_retrieve(&facts);
        if let Some(cache_entry) = cache_entry {
            self.cache.insert(fingerprint, cache_entry);
        }
        (status, generation, observed)
    }
}

fn cached_item(candidate: &Candidate) -> Option<CachedItem> {
    Some(CachedItem {
        id: DocumentId::new(candidate.id.clone()).ok()?,
        score: 0.0,
        content: None,
        metadata: Metadata::default(),
        revision: candidate.revision.clone().map(Revision::new).transpose().ok()?,
        watermark: candidate.watermark.map(Watermark),
        retrieved_at_ms: 0,
    })
}
