//! The serving path and the replay simulator settle alike: random decision inputs go through
//! the serving path's decision ([`super::decide_retrieve`]) and settlement, and through
//! `kyro_core::replay::replay_retrieve`, and every answer must be identical.

use std::collections::BTreeMap;

use kyro_core::planner::Settlement;
use kyro_core::planner::{
    Action, Answer, Backend, CacheEntry, CachedItem, CheckedHits, DocumentFacts, LedgerAfter,
    LedgerFacts, SettleInput, ShortAnswer, settle,
};
use kyro_core::replay::{Candidate, Observed, RetrieveFacts, StepStatus, replay_retrieve};
use kyro_core::{
    DocumentId, Embedding, FreshnessMode, Metadata, OwnershipMode, Revision, Scope, Watermark,
};

use super::{LedgerRead, decide_retrieve};
use crate::wire::request::ValidRetrieve;

/// A small deterministic generator (64-bit LCG), so a failure names its case.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn revision(&mut self) -> Option<String> {
        self.chance(70).then(|| self.below(5).to_string())
    }
}

fn item(candidate: &Candidate) -> CachedItem {
    CachedItem {
        id: DocumentId::new(candidate.id.clone()).unwrap(),
        score: 0.0,
        content: None,
        metadata: Metadata::default(),
        revision: candidate.revision.clone().map(|revision| Revision::new(revision).unwrap()),
        watermark: candidate.watermark.map(Watermark),
        retrieved_at_ms: 0,
    }
}

fn facts(random: &mut Random, generation_bound: u64) -> DocumentFacts {
    DocumentFacts {
        generation: random.below(generation_bound + 1),
        revision: random.revision(),
        watermark: random.chance(30).then(|| random.below(100)),
        tombstone: random.chance(15),
        event_timestamp_ms: random.chance(20).then(|| i64::try_from(random.below(50)).unwrap()),
    }
}

fn candidates(random: &mut Random) -> Vec<Candidate> {
    let mut ids: Vec<u64> = (0..random.below(5)).map(|_| random.below(6)).collect();
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter()
        .map(|id| Candidate {
            id: format!("doc-{id}"),
            revision: random.revision(),
            watermark: random.chance(30).then(|| random.below(100)),
        })
        .collect()
}

/// The random facts of one retrieve.
struct Case {
    valid: ValidRetrieve,
    production: bool,
    ownership: OwnershipMode,
    ledger: Option<LedgerFacts>,
    entry: Option<CacheEntry>,
    entry_documents: BTreeMap<String, DocumentFacts>,
    fetched: Vec<Candidate>,
    short: Option<ShortAnswer>,
    ledger_after: Option<LedgerAfter>,
}

const OWNER: (&str, &str, &str) = ("acme", "support", "pg");

fn random_case(random: &mut Random) -> Case {
    let modes = [FreshnessMode::Strict, FreshnessMode::Balanced, FreshnessMode::Eventual];
    let ownerships = [
        OwnershipMode::WriteThrough,
        OwnershipMode::EventFeed,
        OwnershipMode::SnapshotBundle,
        OwnershipMode::BestEffort,
    ];
    let current = random.below(12);
    let ledger = random.chance(85).then(|| LedgerFacts {
        current_generation: current,
        scope_generation: random.below(current + 1),
    });
    let valid = ValidRetrieve {
        scope: Scope::new(OWNER.0, OWNER.1).unwrap(),
        embedding: Embedding::new(vec![1.0, 0.0]).unwrap(),
        filter: None,
        top_k: 5,
        freshness_mode: modes[random.below(3) as usize],
        required_generation: random.chance(20).then(|| random.below(14) + 1),
        include_content: false,
    };
    let cached = candidates(random);
    let entry = random.chance(60).then(|| CacheEntry {
        items: cached.iter().map(item).collect(),
        generation: random.below(current + 1),
        tenant_id: OWNER.0.to_owned(),
        namespace: OWNER.1.to_owned(),
        store_id: OWNER.2.to_owned(),
        invalidated_at: random.chance(25).then(|| random.below(current + 1)),
    });
    let mut entry_documents = BTreeMap::new();
    for candidate in &cached {
        if random.chance(50) {
            entry_documents.insert(candidate.id.clone(), facts(random, current));
        }
    }
    let fetched = candidates(random);
    let mut after_documents = BTreeMap::new();
    for candidate in &fetched {
        if random.chance(60) {
            after_documents.insert(candidate.id.clone(), facts(random, current + 1));
        }
    }
    Case {
        production: random.chance(50),
        ownership: ownerships[random.below(4) as usize],
        short: random.chance(15).then_some(ShortAnswer { requested: 5, returned: 1 }),
        ledger_after: random.chance(90).then(|| LedgerAfter {
            current_generation: current + random.below(2),
            documents: after_documents,
        }),
        valid,
        ledger,
        entry,
        entry_documents,
        fetched,
    }
}

/// The case through the serving path's decision and settlement; whether it fetched.
fn serve(case: &Case) -> (Settlement, bool) {
    let read = case.ledger.map(|facts| LedgerRead {
        facts,
        documents: case.entry_documents.clone(),
        seen: Vec::new(),
    });
    let (entry, decision) = decide_retrieve(
        case.production,
        case.ownership,
        &case.valid,
        read.as_ref(),
        case.entry.clone(),
    );
    let fetching = matches!(decision.action, Action::Fetch { .. });
    let backend = if fetching {
        Backend::Answered(Answer {
            hits: CheckedHits {
                items: case.fetched.iter().map(item).collect(),
                ..Default::default()
            },
            short: case.short,
            ledger_after: case.ledger_after.clone(),
        })
    } else {
        Backend::NotAsked
    };
    let settlement = settle(SettleInput {
        decision: &decision,
        entry: entry.as_ref(),
        generation: case.ledger.map_or(0, |ledger| ledger.current_generation),
        backend: &backend,
        owner: OWNER,
    })
    .expect("a backend that answered never fails the settlement");
    (settlement, fetching)
}

/// The case through the replay simulator.
fn replay(case: &Case) -> (StepStatus, u64, Observed, Option<CacheEntry>) {
    replay_retrieve(&RetrieveFacts {
        requested: case.valid.freshness_mode,
        production: case.production,
        ownership: case.ownership,
        required_generation: case.valid.required_generation,
        ledger: case.ledger,
        entry: case.entry.clone(),
        entry_document_generations: case
            .entry_documents
            .values()
            .map(|facts| facts.generation)
            .collect(),
        candidates: case.fetched.clone(),
        short: case.short,
        ledger_after: case.ledger_after.clone(),
        owner: (OWNER.0.to_owned(), OWNER.1.to_owned(), OWNER.2.to_owned()),
    })
}

fn entry_key(entry: Option<&CacheEntry>) -> Option<(u64, Vec<String>, Option<u64>)> {
    entry.map(|entry| {
        let ids = entry.items.iter().map(|item| item.id.to_string()).collect();
        (entry.generation, ids, entry.invalidated_at)
    })
}

#[test]
fn the_serving_path_and_the_replay_simulator_settle_alike() {
    let mut random = Random(7);
    let mut n_fetched = 0;
    for case_idx in 0..4000 {
        let case = random_case(&mut random);
        let (served, fetched) = serve(&case);
        n_fetched += usize::from(fetched);
        let (status, generation, observed, cache_entry) = replay(&case);
        assert_eq!(status, served.status.into(), "case {case_idx}: status");
        assert_eq!(generation, served.generation, "case {case_idx}: generation");
        let answered = Observed::of(&served, case.valid.freshness_mode, case.ownership);
        assert_eq!(observed, answered, "case {case_idx}: answer");
        assert_eq!(
            entry_key(cache_entry.as_ref()),
            entry_key(served.cache_entry.as_ref()),
            "case {case_idx}: reuse entry"
        );
    }
    assert!(n_fetched > 1000, "the cases exercise the fetch path ({n_fetched})");
}
