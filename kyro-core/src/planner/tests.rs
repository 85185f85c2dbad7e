//! The planner as data: scenario tables in, decisions and verdicts out, snapshotted.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{
    Action, CacheEntry, CachedItem, DiagnosticCode, DocumentFacts, Fingerprinter, Invalidation,
    LedgerFacts, ReuseCache, StoreFacts, assess_item, decide, packet_status,
};
use crate::change::{ChangeScope, ChangeTarget};
use crate::{DocumentId, FreshnessMode, Metadata, OwnershipMode, Revision, Watermark};

fn entry(generation: u64, invalidated_at: Option<u64>) -> CacheEntry {
    CacheEntry {
        items: vec![CachedItem {
            id: DocumentId::new("doc-1").unwrap(),
            score: 0.9,
            content: Some("cached".to_owned()),
            metadata: Metadata::new(BTreeMap::new()).unwrap(),
            revision: None,
            watermark: None,
            retrieved_at_ms: 0,
        }],
        generation,
        tenant_id: "acme".to_owned(),
        namespace: "support".to_owned(),
        store_id: "pg".to_owned(),
        invalidated_at,
    }
}

#[derive(Serialize)]
struct Scenario {
    name: &'static str,
    requested: FreshnessMode,
    production: bool,
    ownership: OwnershipMode,
    certified: bool,
    ledger: Option<LedgerFacts>,
    required_generation: Option<u64>,
    entry: Option<(u64, Option<u64>)>,
}

#[derive(Serialize)]
struct Outcome {
    scenario: Scenario,
    decision: super::Decision,
}

fn ledger(current_generation: u64, scope_generation: u64) -> Option<LedgerFacts> {
    Some(LedgerFacts { current_generation, scope_generation })
}

fn scenarios() -> Vec<Scenario> {
    let base = |name: &'static str, requested| Scenario {
        name,
        requested,
        production: true,
        ownership: OwnershipMode::EventFeed,
        certified: true,
        ledger: ledger(10, 4),
        required_generation: None,
        entry: None,
    };
    vec![
        base("strict, nothing cached: fetch", FreshnessMode::Strict),
        Scenario {
            entry: Some((5, None)),
            ..base("strict, fresh entry: reuse", FreshnessMode::Strict)
        },
        Scenario {
            entry: Some((3, None)),
            ..base("strict, entry older than the scope's last change: fetch", FreshnessMode::Strict)
        },
        Scenario {
            entry: Some((5, Some(6))),
            ..base("strict, invalidated entry: fetch, never reuse", FreshnessMode::Strict)
        },
        Scenario {
            ledger: None,
            entry: Some((5, None)),
            ..base("strict, ledger unreadable: block", FreshnessMode::Strict)
        },
        Scenario {
            required_generation: Some(11),
            ..base("strict, required generation ahead: block", FreshnessMode::Strict)
        },
        Scenario {
            required_generation: Some(10),
            ..base("strict, required generation reached: fetch", FreshnessMode::Strict)
        },
        Scenario {
            certified: false,
            ..base("strict, store not certified: block", FreshnessMode::Strict)
        },
        Scenario {
            ownership: OwnershipMode::BestEffort,
            ..base("strict on best_effort in production: block", FreshnessMode::Strict)
        },
        Scenario {
            ownership: OwnershipMode::BestEffort,
            production: false,
            ..base(
                "strict on best_effort in development: downgrade to balanced",
                FreshnessMode::Strict,
            )
        },
        Scenario {
            entry: Some((5, None)),
            ..base("balanced, fresh entry: reuse", FreshnessMode::Balanced)
        },
        Scenario {
            entry: Some((5, Some(7))),
            ..base("balanced, stale entry: fetch with fallback", FreshnessMode::Balanced)
        },
        Scenario {
            ledger: None,
            ..base("balanced, ledger unreadable: fetch", FreshnessMode::Balanced)
        },
        Scenario {
            required_generation: Some(99),
            ..base(
                "balanced, required generation ahead: fetch with warning",
                FreshnessMode::Balanced,
            )
        },
        Scenario {
            entry: Some((5, Some(7))),
            ..base("eventual, stale entry: reuse flagged", FreshnessMode::Eventual)
        },
        base("eventual, nothing cached: fetch", FreshnessMode::Eventual),
    ]
}

#[test]
fn decisions_follow_the_contract() {
    let outcomes: Vec<Outcome> = scenarios()
        .into_iter()
        .map(|scenario| {
            let cached = scenario
                .entry
                .map(|(generation, invalidated_at)| entry(generation, invalidated_at));
            let decision = decide(
                scenario.requested,
                scenario.production,
                StoreFacts { ownership: scenario.ownership, certified: scenario.certified },
                scenario.ledger,
                scenario.required_generation,
                cached.as_ref(),
            );
            Outcome { scenario, decision }
        })
        .collect();
    // Invariants the snapshot must never lose, checked directly so a careless snapshot update fails.
    for outcome in &outcomes {
        let strict = outcome.decision.served_mode == FreshnessMode::Strict;
        if strict {
            assert_ne!(
                outcome.decision.action,
                Action::Reuse { stale: true },
                "{}",
                outcome.scenario.name
            );
        }
        if outcome.scenario.name.contains("block") {
            assert_eq!(outcome.decision.action, Action::Block, "{}", outcome.scenario.name);
        }
    }
    insta::assert_yaml_snapshot!(outcomes);
}

#[derive(Serialize)]
struct ItemCase {
    name: &'static str,
    revision: Option<&'static str>,
    watermark: Option<u64>,
    facts: DocumentFacts,
    verdict: super::ItemVerdict,
}

#[test]
fn stale_pruning_compares_with_the_strongest_evidence() {
    let facts = |revision: Option<&str>,
                 watermark: Option<u64>,
                 tombstone: bool,
                 event_timestamp_ms: Option<i64>| DocumentFacts {
        generation: 7,
        revision: revision.map(str::to_owned),
        watermark,
        tombstone,
        event_timestamp_ms,
    };
    let cases = vec![
        ("same revision", Some("5"), None, facts(Some("5"), None, false, None)),
        ("newer numeric revision", Some("6"), None, facts(Some("5"), None, false, None)),
        ("older numeric revision", Some("4"), None, facts(Some("5"), None, false, None)),
        ("different opaque revision", Some("abc"), None, facts(Some("def"), None, false, None)),
        ("no revision returned", None, None, facts(Some("5"), None, false, None)),
        (
            "no revision, but the row watermark reached the ack",
            None,
            Some(100),
            facts(Some("5"), Some(100), false, None),
        ),
        (
            "no revision, row watermark behind the ack",
            None,
            Some(99),
            facts(Some("5"), Some(100), false, None),
        ),
        ("watermark at the ack", None, Some(100), facts(None, Some(100), false, None)),
        ("watermark behind the ack", None, Some(99), facts(None, Some(100), false, None)),
        ("row newer than the event", None, Some(2_000_000), facts(None, None, false, Some(1_000))),
        ("row older than the event", None, Some(999_999), facts(None, None, false, Some(1_000))),
        ("no evidence at all", None, None, facts(None, None, false, None)),
        ("deleted", Some("5"), Some(100), facts(Some("5"), Some(100), true, None)),
        ("recreated after deletion", Some("6"), None, facts(Some("5"), None, true, None)),
    ];
    let results: Vec<ItemCase> = cases
        .into_iter()
        .map(|(name, revision, watermark, facts)| {
            let verdict = assess_item(
                revision.map(|revision| Revision::new(revision).unwrap()).as_ref(),
                watermark.map(Watermark),
                &facts,
            );
            ItemCase { name, revision, watermark, facts, verdict }
        })
        .collect();
    for case in &results {
        let kept = case.verdict == super::ItemVerdict::Keep;
        let expected_kept = matches!(
            case.name,
            "same revision"
                | "newer numeric revision"
                | "watermark at the ack"
                | "row newer than the event"
                | "recreated after deletion"
                | "no revision, but the row watermark reached the ack"
        );
        assert_eq!(kept, expected_kept, "{}", case.name);
    }
    insta::assert_yaml_snapshot!(results);
}

#[test]
fn the_reuse_cache_invalidates_what_a_change_covers_and_evicts_the_least_recent() {
    let mut cache = ReuseCache::new(2);
    let key = |text: &str| Fingerprinter::default().field(text).finish();
    cache.insert(key("a"), entry(1, None));
    cache.insert(key("b"), CacheEntry { namespace: "docs".to_owned(), ..entry(1, None) });
    let scope = ChangeScope {
        tenant_id: Some("acme".to_owned()),
        namespace: Some("support".to_owned()),
        connector_id: None,
    };
    let document =
        Invalidation::for_target(&ChangeTarget::Document { doc_id: "doc-1".to_owned() }, &scope);
    assert_eq!(cache.invalidate(&document, 2), 1, "only the support entry holds doc-1");
    assert_eq!(cache.invalidate(&document, 3), 0, "an invalidated entry is not counted twice");
    assert_eq!(cache.get(key("a")).unwrap().invalidated_at, Some(2));
    let other_tenant =
        Invalidation::for_target(&ChangeTarget::Tenant { tenant_id: "globex".to_owned() }, &scope);
    assert_eq!(cache.invalidate(&other_tenant, 4), 0);
    // "a" was used last, so inserting "c" evicts "b".
    cache.insert(key("c"), entry(5, None));
    assert!(cache.get(key("b")).is_none());
    assert!(cache.get(key("a")).is_some() && cache.get(key("c")).is_some());
    assert_eq!(cache.len(), 2);
}

/// The document index finds exactly the entries a scan of the whole cache finds, through
/// inserts, replacements, evictions and invalidations of every kind.
#[test]
fn indexed_invalidation_matches_a_scan_of_every_entry() {
    let mut indexed = ReuseCache::new(6);
    let mut scanned = ReuseCache::new(6);
    let mut state: u64 = 42;
    let mut next = |bound: u64| {
        state =
            state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % bound
    };
    let names = ["acme", "globex"];
    let mut n_document_hits = 0;
    for step in 0..3_000_u64 {
        let tenant = names[next(2) as usize];
        let namespace = ["support", "docs"][next(2) as usize];
        let doc_id = format!("doc-{}", next(8));
        match next(8) {
            0..=3 => {
                let fingerprint = Fingerprinter::default().field(&next(12).to_string()).finish();
                let items = (0..next(4))
                    .map(|_| CachedItem {
                        id: DocumentId::new(format!("doc-{}", next(8))).unwrap(),
                        ..entry(0, None).items[0].clone()
                    })
                    .collect();
                let cached = CacheEntry {
                    items,
                    generation: step,
                    tenant_id: tenant.to_owned(),
                    namespace: namespace.to_owned(),
                    store_id: names[next(2) as usize].to_owned(),
                    invalidated_at: None,
                };
                indexed.insert(fingerprint, cached.clone());
                scanned.insert(fingerprint, cached);
            }
            4..=6 => {
                let document = Invalidation::Document {
                    tenant_id: tenant.to_owned(),
                    namespace: namespace.to_owned(),
                    doc_id,
                };
                let n_indexed = indexed.invalidate(&document, step);
                assert_eq!(n_indexed, scanned.invalidate_by_scan(&document, step), "step {step}");
                n_document_hits += n_indexed;
            }
            _ => {
                let coarse = match next(5) {
                    0 => Invalidation::Tenant { tenant_id: tenant.to_owned() },
                    1 => {
                        Invalidation::Namespace { tenant_id: None, namespace: namespace.to_owned() }
                    }
                    2 => Invalidation::Namespace {
                        tenant_id: Some(tenant.to_owned()),
                        namespace: namespace.to_owned(),
                    },
                    3 => Invalidation::Store { store_id: tenant.to_owned() },
                    _ => Invalidation::All,
                };
                let n_indexed = indexed.invalidate(&coarse, step);
                assert_eq!(n_indexed, scanned.invalidate_by_scan(&coarse, step), "step {step}");
            }
        }
    }
    assert!(n_document_hits > 100, "the sequence exercises the index ({n_document_hits})");
    assert_eq!(indexed.len(), scanned.len());
    for key in 0..12_u64 {
        let fingerprint = Fingerprinter::default().field(&key.to_string()).finish();
        assert_eq!(indexed.get(fingerprint), scanned.get(fingerprint), "entry {key}");
    }
}

#[test]
fn an_entry_is_only_found_for_the_scope_it_was_cached_for() {
    let mut cache = ReuseCache::new(4);
    let key = Fingerprinter::default().field("same hash").finish();
    cache.insert(key, entry(1, None));
    let (tenant, namespace, store) = {
        let cached = cache.get(key).unwrap();
        (cached.tenant_id.clone(), cached.namespace.clone(), cached.store_id.clone())
    };
    assert!(cache.get_scoped(key, &tenant, &namespace, &store).is_some());
    assert!(cache.get_scoped(key, "globex", &namespace, &store).is_none(), "another tenant");
    assert!(cache.get_scoped(key, &tenant, "billing", &store).is_none(), "another namespace");
    assert!(cache.get_scoped(key, &tenant, &namespace, "other-store").is_none(), "another store");
}

#[test]
fn fingerprints_separate_fields_and_absence() {
    let pair = |a: &str, b: &str| Fingerprinter::default().field(a).field(b).finish();
    assert_ne!(pair("ab", "c"), pair("a", "bc"));
    assert_ne!(
        Fingerprinter::default().optional(None).finish(),
        Fingerprinter::default().optional(Some("")).finish()
    );
    assert_eq!(pair("x", "y"), pair("x", "y"));
    assert_eq!(format!("{}", pair("x", "y")).len(), 16);
}

#[test]
fn packet_status_orders_blocked_degraded_partial_complete() {
    assert_eq!(packet_status(true, true, 1, true).as_str(), "stale_blocked");
    assert_eq!(packet_status(false, true, 1, true).as_str(), "degraded");
    assert_eq!(packet_status(false, false, 1, false).as_str(), "partial");
    assert_eq!(packet_status(false, false, 0, true).as_str(), "partial");
    assert_eq!(packet_status(false, false, 0, false).as_str(), "complete");
}

/// The facts of one settlement scenario.
struct Settle {
    decision: super::Decision,
    entry: Option<CacheEntry>,
    backend: super::Backend,
}

fn settle_case(case: &Settle) -> Result<super::Settlement, super::BackendFailed> {
    super::settle(super::SettleInput {
        decision: &case.decision,
        entry: case.entry.as_ref(),
        generation: 10,
        backend: &case.backend,
        owner: ("acme", "support", "pg"),
    })
}

fn decision(served_mode: FreshnessMode, action: Action) -> super::Decision {
    super::Decision { served_mode, action, notes: Vec::new() }
}

fn item(id: &str, revision: Option<&str>) -> CachedItem {
    CachedItem {
        id: DocumentId::new(id).unwrap(),
        revision: revision.map(|revision| Revision::new(revision).unwrap()),
        ..entry(0, None).items[0].clone()
    }
}

fn answered(items: Vec<CachedItem>, documents: &[(&str, &str, bool)]) -> super::Backend {
    super::Backend::Answered(super::Answer {
        hits: super::CheckedHits { items, ..super::CheckedHits::default() },
        short: None,
        ledger_after: Some(super::LedgerAfter {
            current_generation: 10,
            documents: documents
                .iter()
                .map(|(id, revision, tombstone)| {
                    let facts = DocumentFacts {
                        generation: 9,
                        revision: Some((*revision).to_owned()),
                        watermark: None,
                        tombstone: *tombstone,
                        event_timestamp_ms: None,
                    };
                    ((*id).to_owned(), facts)
                })
                .collect(),
        }),
    })
}

#[test]
fn settlement_prunes_in_strict_flags_in_eventual_and_caches_only_clean_answers() {
    use super::{ItemSource, PacketStatus};
    let fetch = Action::Fetch { fallback: false };
    let items = vec![item("doc-1", Some("1")), item("doc-2", Some("3"))];
    let strict = settle_case(&Settle {
        decision: decision(FreshnessMode::Strict, fetch),
        entry: None,
        backend: answered(items.clone(), &[("doc-1", "2", false)]),
    })
    .unwrap();
    assert_eq!(strict.status, PacketStatus::Partial);
    assert_eq!(strict.items.len(), 1);
    assert_eq!(strict.stale_pruned[0].doc_id, "doc-1");
    assert!(strict.cache_entry.is_none(), "an answer that pruned is not reused");

    // Eventual serves the stale item, flagged, and never caches the answer: a later strict
    // request with the same body must not reuse it.
    let eventual = settle_case(&Settle {
        decision: decision(FreshnessMode::Eventual, fetch),
        entry: None,
        backend: answered(items.clone(), &[("doc-1", "2", false)]),
    })
    .unwrap();
    assert_eq!(eventual.items.len(), 2);
    assert!(eventual.stale_pruned.is_empty());
    assert_eq!(eventual.notes[0].code, DiagnosticCode::StaleReuseServed);
    assert!(eventual.cache_entry.is_none(), "a stale verdict is never reusable");

    let clean = settle_case(&Settle {
        decision: decision(FreshnessMode::Strict, fetch),
        entry: None,
        backend: answered(items.clone(), &[("doc-1", "1", false)]),
    })
    .unwrap();
    assert_eq!(clean.status, PacketStatus::Complete);
    let cached = clean.cache_entry.expect("a clean strict answer is reusable");
    assert_eq!((cached.generation, cached.items.len()), (10, 2));
    assert!(clean.items.iter().all(|(_, source)| *source == ItemSource::Backend));

    let deleted = settle_case(&Settle {
        decision: decision(FreshnessMode::Balanced, fetch),
        entry: None,
        backend: answered(items, &[("doc-2", "3", true)]),
    })
    .unwrap();
    assert_eq!(deleted.notes[0].code, DiagnosticCode::TombstonePruned);
    assert_eq!(deleted.stale_pruned.len(), 1);
}

#[test]
fn settlement_fails_closed_on_foreign_hits_unreadable_ledgers_and_failed_backends() {
    use super::PacketStatus;
    let fetch = Action::Fetch { fallback: true };
    let foreign = super::Backend::Answered(super::Answer {
        hits: super::CheckedHits {
            items: vec![item("doc-1", None)],
            scope_violation: true,
            ..super::CheckedHits::default()
        },
        short: None,
        ledger_after: Some(super::LedgerAfter::default()),
    });
    let refused = settle_case(&Settle {
        decision: decision(FreshnessMode::Eventual, fetch),
        entry: None,
        backend: foreign,
    })
    .unwrap();
    assert_eq!(refused.status, PacketStatus::StaleBlocked);
    assert!(refused.items.is_empty() && refused.cache_entry.is_none());

    let unreadable = super::Backend::Answered(super::Answer {
        hits: super::CheckedHits { items: vec![item("doc-1", None)], ..Default::default() },
        short: None,
        ledger_after: None,
    });
    let strict = settle_case(&Settle {
        decision: decision(FreshnessMode::Strict, fetch),
        entry: None,
        backend: unreadable.clone(),
    })
    .unwrap();
    assert_eq!(strict.status, PacketStatus::StaleBlocked);
    let balanced = settle_case(&Settle {
        decision: decision(FreshnessMode::Balanced, fetch),
        entry: None,
        backend: unreadable,
    })
    .unwrap();
    assert_eq!((balanced.items.len(), balanced.cache_entry.is_none()), (1, true));

    let failed = super::Backend::Failed { kind: "unavailable".to_owned() };
    let fallback = settle_case(&Settle {
        decision: decision(FreshnessMode::Balanced, fetch),
        entry: Some(entry(3, Some(4))),
        backend: failed.clone(),
    })
    .unwrap();
    assert_eq!(fallback.status, PacketStatus::Degraded);
    assert_eq!(fallback.execution_path, super::ExecutionPath::ContextReuseHit);
    assert!(
        settle_case(&Settle {
            decision: decision(FreshnessMode::Strict, Action::Fetch { fallback: false }),
            entry: Some(entry(3, Some(4))),
            backend: failed,
        })
        .is_err()
    );
}

#[test]
fn a_short_answer_is_partial_and_never_cached() {
    let backend = super::Backend::Answered(super::Answer {
        hits: super::CheckedHits { items: vec![item("doc-1", None)], ..Default::default() },
        short: Some(super::ShortAnswer { requested: 5, returned: 1 }),
        ledger_after: Some(super::LedgerAfter::default()),
    });
    let short = settle_case(&Settle {
        decision: decision(FreshnessMode::Strict, Action::Fetch { fallback: false }),
        entry: None,
        backend,
    })
    .unwrap();
    assert_eq!(short.status, super::PacketStatus::Partial);
    assert!(short.short && short.cache_entry.is_none());
    assert_eq!(short.omissions[0].reason, super::OmissionReason::RankCutoff);
}

#[test]
fn checked_hits_refuse_a_foreign_scope_duplicates_and_overflow() {
    use crate::{Scope, SearchHit, StoredDocument};
    let home = Scope::new("acme", "support").unwrap();
    let hit = |scope: &Scope, id: &str, score: f32| SearchHit {
        document: StoredDocument {
            scope: scope.clone(),
            id: DocumentId::new(id).unwrap(),
            content: Some("text".to_owned()),
            metadata: Metadata::default(),
            revision: None,
            watermark: None,
        },
        score,
    };
    let clean = super::check_hits(
        &home,
        2,
        false,
        vec![
            hit(&home, "a", 0.9),
            hit(&home, "a", 0.8),
            hit(&home, "b", 0.7),
            hit(&home, "c", 0.6),
        ],
        1,
    );
    assert_eq!(clean.items.len(), 2);
    assert_eq!(clean.rejected.len(), 2);
    assert!(!clean.scope_violation && clean.items.iter().all(|item| item.content.is_none()));
    let other = Scope::new("globex", "support").unwrap();
    let leaked =
        super::check_hits(&home, 5, true, vec![hit(&home, "a", 0.9), hit(&other, "x", 0.8)], 1);
    assert!(leaked.scope_violation);
    assert_eq!(leaked.notes[0].code, DiagnosticCode::ConnectorScopeViolation);
    let unordered =
        super::check_hits(&home, 5, true, vec![hit(&home, "a", 0.1), hit(&home, "b", 0.9)], 1);
    assert_eq!(unordered.notes[0].code, DiagnosticCode::ContextGuardRejected);
}

#[test]
fn filter_fingerprints_are_canonical_and_distinct() {
    use crate::{FilterExpr, FilterKey, FilterValue, RuntimeFilter};
    let key = |name: &str| FilterKey::new(name).unwrap();
    let value = |text: &str| FilterValue::new(text).unwrap();
    let fingerprint = |root: FilterExpr| {
        Fingerprinter::default().filter(Some(&RuntimeFilter::new(root).unwrap())).finish()
    };
    let in_ab = FilterExpr::In { key: key("lang"), values: vec![value("a"), value("b")] };
    let in_ba =
        FilterExpr::In { key: key("lang"), values: vec![value("b"), value("a"), value("b")] };
    assert_eq!(fingerprint(in_ab.clone()), fingerprint(in_ba), "in is a set");
    let exact = FilterExpr::Exact { key: key("lang"), value: value("a") };
    assert_ne!(fingerprint(in_ab.clone()), fingerprint(exact.clone()));
    assert_ne!(
        fingerprint(FilterExpr::And(vec![exact.clone()])),
        fingerprint(FilterExpr::Or(vec![exact.clone()]))
    );
    let range = |min: f64| FilterExpr::Range { key: key("year"), min: Some(min), max: None };
    assert_eq!(fingerprint(range(0.0)), fingerprint(range(-0.0)));
    assert_ne!(fingerprint(range(1.0)), fingerprint(range(2.0)));
    assert_ne!(
        Fingerprinter::default().filter(None).finish(),
        Fingerprinter::default().filter(Some(&RuntimeFilter::new(exact).unwrap())).finish()
    );
}
