//! The ledger's merge as data: stored and incoming facts in, merged facts and their order out,
//! snapshotted; and the invariants checked over every combination of a small grid.

use serde::Serialize;

use super::{EventOrder, Evidence, merge};
use crate::planner::DocumentFacts;

fn facts(
    generation: u64,
    revision: Option<&str>,
    watermark: Option<u64>,
    tombstone: bool,
    event_timestamp_ms: Option<i64>,
) -> DocumentFacts {
    DocumentFacts {
        generation,
        revision: revision.map(str::to_owned),
        watermark,
        tombstone,
        event_timestamp_ms,
    }
}

#[derive(Serialize)]
struct Case {
    name: &'static str,
    stored: Option<DocumentFacts>,
    incoming: DocumentFacts,
    merged: super::Merged,
}

fn check(cases: Vec<(&'static str, Option<DocumentFacts>, DocumentFacts)>) -> Vec<Case> {
    cases
        .into_iter()
        .map(|(name, stored, incoming)| {
            let merged = merge(stored.as_ref(), &incoming);
            Case { name, stored, incoming, merged }
        })
        .collect()
}

#[test]
fn facts_only_move_forward() {
    let results = check(vec![
        ("nothing stored", None, facts(1, Some("3"), None, false, None)),
        (
            "newer numeric revision",
            Some(facts(1, Some("9"), None, false, None)),
            facts(2, Some("10"), None, false, None),
        ),
        (
            "an upsert at revision 5 after 10 keeps 10",
            Some(facts(1, Some("10"), None, false, None)),
            facts(2, Some("5"), None, false, None),
        ),
        (
            "a late content update at revision 3 keeps the deletion at 4",
            Some(facts(1, Some("4"), None, true, None)),
            facts(2, Some("3"), None, false, None),
        ),
        (
            "a newer revision brings a deleted document back",
            Some(facts(1, Some("4"), None, true, None)),
            facts(2, Some("5"), None, false, None),
        ),
        (
            "a deletion of the same revision deletes it",
            Some(facts(1, Some("4"), None, false, None)),
            facts(2, Some("4"), None, true, None),
        ),
        (
            "an update at the deleted revision does not undo the deletion",
            Some(facts(1, Some("4"), Some(40), true, None)),
            facts(2, Some("4"), None, false, None),
        ),
        (
            "opaque revisions fall back to the watermark",
            Some(facts(1, Some("abc"), Some(20), false, None)),
            facts(2, Some("def"), Some(10), false, None),
        ),
        (
            "opaque revisions without other evidence: the later acknowledged wins",
            Some(facts(1, Some("abc"), None, false, None)),
            facts(2, Some("def"), None, false, None),
        ),
        (
            "a late change with a larger watermark raises it, under its generation",
            Some(facts(1, Some("10"), Some(100), false, None)),
            facts(2, Some("5"), Some(120), false, None),
        ),
        (
            "a write-through ACK with an older watermark",
            Some(facts(1, None, Some(100), false, None)),
            facts(2, None, Some(90), false, None),
        ),
        (
            "a newer revision without a watermark drops the older version's",
            Some(facts(1, Some("1"), Some(100), false, None)),
            facts(2, Some("2"), None, false, None),
        ),
        (
            "event timestamps order events without revisions",
            Some(facts(1, None, None, false, Some(2_000))),
            facts(2, None, None, true, Some(1_000)),
        ),
        (
            "arrival order alone never undoes a deletion",
            Some(facts(1, None, None, true, None)),
            facts(2, None, None, false, None),
        ),
        (
            "a newer timestamp undoes a deletion",
            Some(facts(1, None, None, true, Some(1_000))),
            facts(2, None, None, false, Some(2_000)),
        ),
    ]);
    let orders: Vec<(&str, EventOrder)> =
        results.iter().map(|case| (case.name, case.merged.order)).collect();
    assert_eq!(orders[2].1, EventOrder::OutOfOrder(Evidence::Revision), "{orders:?}");
    assert!(results[3].merged.facts.tombstone, "the tombstone stays");
    assert_eq!(results[2].merged.facts.revision.as_deref(), Some("10"));
    insta::assert_yaml_snapshot!(results);
}

/// Every combination of a small grid of stored and incoming facts: the merged watermark and
/// timestamp never go below either side's (a newer version carries only its own), a tombstone is undone only by strictly newer
/// evidence, and out-of-order changes keep the stored version.
#[test]
fn invariants_hold_over_a_grid() {
    let revisions = [None, Some("3"), Some("4"), Some("abc")];
    let watermarks = [None, Some(10), Some(20)];
    let timestamps = [None, Some(1_000)];
    let mut grid = Vec::new();
    for revision in revisions {
        for watermark in watermarks {
            for timestamp in timestamps {
                for tombstone in [false, true] {
                    grid.push((revision, watermark, tombstone, timestamp));
                }
            }
        }
    }
    for &(revision, watermark, tombstone, timestamp) in &grid {
        let stored = facts(1, revision, watermark, tombstone, timestamp);
        for &(revision, watermark, tombstone, timestamp) in &grid {
            let incoming = facts(2, revision, watermark, tombstone, timestamp);
            let merged = merge(Some(&stored), &incoming);
            let context = format!("{stored:?} + {incoming:?} = {merged:?}");
            let facts = &merged.facts;
            if matches!(merged.order, EventOrder::Newer(_)) {
                // A newer version's facts are its own: the older version's watermark or
                // timestamp never stands in for evidence the change does not carry.
                assert_eq!(facts.watermark.is_some(), incoming.watermark.is_some(), "{context}");
                assert_eq!(
                    facts.event_timestamp_ms.is_some(),
                    incoming.event_timestamp_ms.is_some(),
                    "{context}"
                );
            }
            if incoming.watermark.is_some() || !matches!(merged.order, EventOrder::Newer(_)) {
                assert!(facts.watermark >= stored.watermark.max(incoming.watermark), "{context}");
            }
            if incoming.event_timestamp_ms.is_some()
                || !matches!(merged.order, EventOrder::Newer(_))
            {
                assert!(
                    facts.event_timestamp_ms
                        >= stored.event_timestamp_ms.max(incoming.event_timestamp_ms),
                    "{context}"
                );
            }
            if stored.tombstone && !facts.tombstone {
                assert!(
                    matches!(merged.order, EventOrder::Newer(evidence) if evidence != Evidence::Arrival),
                    "only strictly newer evidence undoes a deletion: {context}"
                );
            }
            if merged.order.is_out_of_order() {
                assert_eq!(
                    (&facts.revision, facts.tombstone),
                    (&stored.revision, stored.tombstone),
                    "{context}"
                );
                // The generation moves only with the facts.
                let moved = (facts.watermark, facts.event_timestamp_ms)
                    != (stored.watermark, stored.event_timestamp_ms);
                let generation = if moved { incoming.generation } else { stored.generation };
                assert_eq!(facts.generation, generation, "{context}");
            }
            // Merging the same facts again changes nothing but, at most, the generation.
            let again = merge(Some(facts), &DocumentFacts { generation: 3, ..facts.clone() });
            assert_eq!(
                DocumentFacts { generation: facts.generation, ..again.facts },
                *facts,
                "{context}"
            );
        }
    }
}
