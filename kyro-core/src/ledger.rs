//! How the ledger's facts about a document move: only forward.
//!
//! Change events and write-through ACKs arrive out of order (a retried webhook, two replicas
//! of a source, a slow queue). [`merge`] folds a newly acknowledged change's facts about one
//! document into the stored ones so that a late event never rolls them back: revisions are
//! compared in a documented order, a newer version's facts are its own (the older version's
//! watermark or timestamp never stands in for it), watermarks never go backwards, a tombstone stays until
//! evidence strictly newer than the deletion arrives, and an event that arrived out of order
//! is reported as such, so the caller can record it.
//!
//! This module is pure: the state store applies it inside its write transaction, and the
//! replay simulator applies it to captured changes.
//!
//! # The order of two versions of a document
//!
//! The first of these that both sides carry decides:
//!
//! 1. **Revision**, when both are integers (ASCII digits as `u128` parses them, so
//!    `"10"` is newer than `"9"`): numeric order. Two equal revisions, integers or not, are the
//!    same version. Two different revisions that are not both integers (hashes, ETags) have no
//!    order: the next evidence decides.
//! 2. **Watermark** (the store's native position a write-through ACK reported): numeric order.
//! 3. **Event timestamp** (the source's time of the change): numeric order.
//!
//! When none of them compares, the change that was acknowledged later is taken as the newer
//! one ([`Evidence::Arrival`]), as a ledger without versions can only do; but arrival order is
//! never evidence against a stored tombstone, which only a strictly newer revision, watermark
//! or timestamp undoes.

use std::cmp::Ordering;

use serde::Serialize;

use crate::planner::DocumentFacts;

#[cfg(test)]
mod tests;

/// The facts to store after a change, and how the change was ordered against what was
/// stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Merged {
    /// The facts to store.
    pub facts: DocumentFacts,
    /// How the incoming facts compared with the stored ones.
    pub order: EventOrder,
}

/// How a change's facts about a document compared with the stored facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "order", content = "by")]
pub enum EventOrder {
    /// Nothing was stored about the document: the incoming facts are stored as they are.
    First,
    /// Newer than the stored facts: they advance (a watermark never goes backwards).
    Newer(Evidence),
    /// The same version as the stored facts: a deletion of it is kept, watermarks and
    /// timestamps take the larger value.
    Same(Evidence),
    /// Older than the stored facts: an out-of-order event. The stored version is kept; only a
    /// larger watermark or timestamp is taken (and then the facts carry the change's
    /// generation).
    OutOfOrder(Evidence),
    /// The stored facts are a deletion and nothing but arrival order says the change is newer:
    /// the tombstone is kept. Recorded as out of order, since it may be a late event from
    /// before the deletion.
    UnprovenAfterDeletion,
}

impl EventOrder {
    /// Whether the change arrived out of order (or could not be proven to be in order after a
    /// deletion): the caller records it.
    pub fn is_out_of_order(self) -> bool {
        matches!(self, Self::OutOfOrder(_) | Self::UnprovenAfterDeletion)
    }
}

/// What decided the order of two versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    /// Their revisions.
    Revision,
    /// Their store watermarks.
    Watermark,
    /// Their source event timestamps.
    EventTimestamp,
    /// Nothing comparable: the change acknowledged later counts as newer.
    Arrival,
}

/// Merges a newly acknowledged change's facts about one document (`incoming`, whose
/// `generation` is the change's) into the stored facts, if any. See the module documentation
/// for the order.
pub fn merge(stored: Option<&DocumentFacts>, incoming: &DocumentFacts) -> Merged {
    let Some(stored) = stored else {
        return Merged { facts: incoming.clone(), order: EventOrder::First };
    };
    let (ordering, evidence) = compare(incoming, stored);
    let watermark = stored.watermark.max(incoming.watermark);
    let event_timestamp_ms = stored.event_timestamp_ms.max(incoming.event_timestamp_ms);
    // A late change leaves the stored version in place; if it still raised the watermark or
    // the timestamp, the facts changed and are the late change's, so that readers comparing
    // generations see that they moved.
    let kept = || {
        let facts = DocumentFacts { watermark, event_timestamp_ms, ..stored.clone() };
        if facts == *stored {
            facts
        } else {
            DocumentFacts { generation: incoming.generation, ..facts }
        }
    };
    match (ordering, evidence) {
        (Ordering::Greater, Evidence::Arrival) if stored.tombstone => {
            Merged { facts: kept(), order: EventOrder::UnprovenAfterDeletion }
        }
        // The facts now describe the newer version: evidence the change does not carry (a
        // watermark or timestamp of the older version) says nothing about it and is dropped,
        // or a store returning the older row at that watermark would pass for the newer one.
        // Evidence it does carry never goes below what was stored.
        (Ordering::Greater, _) => Merged {
            facts: DocumentFacts {
                watermark: incoming
                    .watermark
                    .map(|incoming| incoming.max(stored.watermark.unwrap_or(0))),
                event_timestamp_ms: incoming.event_timestamp_ms.map(|incoming| {
                    stored.event_timestamp_ms.map_or(incoming, |stored| incoming.max(stored))
                }),
                ..incoming.clone()
            },
            order: EventOrder::Newer(evidence),
        },
        (Ordering::Equal, _) => Merged {
            facts: DocumentFacts {
                generation: incoming.generation,
                revision: incoming.revision.clone().or_else(|| stored.revision.clone()),
                watermark,
                // A deletion of this version stands; a repeat of it does not undo one.
                tombstone: stored.tombstone || incoming.tombstone,
                event_timestamp_ms,
            },
            order: EventOrder::Same(evidence),
        },
        (Ordering::Less, _) => Merged { facts: kept(), order: EventOrder::OutOfOrder(evidence) },
    }
}

/// Compares two revisions: `Some` when they are equal or both integers, `None` when they have
/// no order (the next evidence decides).
pub fn compare_revisions(left: &str, right: &str) -> Option<Ordering> {
    if left == right {
        return Some(Ordering::Equal);
    }
    match (left.parse::<u128>(), right.parse::<u128>()) {
        (Ok(left), Ok(right)) => Some(left.cmp(&right)),
        _ => None,
    }
}

/// How `incoming` orders against `stored`, and what decided it.
fn compare(incoming: &DocumentFacts, stored: &DocumentFacts) -> (Ordering, Evidence) {
    if let (Some(incoming), Some(stored)) = (&incoming.revision, &stored.revision)
        && let Some(ordering) = compare_revisions(incoming, stored)
    {
        return (ordering, Evidence::Revision);
    }
    if let (Some(incoming), Some(stored)) = (incoming.watermark, stored.watermark) {
        return (incoming.cmp(&stored), Evidence::Watermark);
    }
    if let (Some(incoming), Some(stored)) = (incoming.event_timestamp_ms, stored.event_timestamp_ms)
    {
        return (incoming.cmp(&stored), Evidence::EventTimestamp);
    }
    (Ordering::Greater, Evidence::Arrival)
}
