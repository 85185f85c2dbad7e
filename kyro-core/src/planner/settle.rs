//! Settlement: what a retrieve serves once the planner has decided and the backend (if asked)
//! has answered. One pure function, [`settle`], called by the serving path and by the replay
//! simulator alike, so a replay can only be as wrong as serving itself.
//!
//! Also here: the check of a backend's raw hits ([`check_hits`]: connector output is untrusted
//! input), the per-item stale verdict against the ledger ([`assess_item`]) and the packet status
//! rule ([`packet_status`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Action, CacheEntry, CachedItem, Decision, DiagnosticCode, Note, Severity};
use crate::document::{Revision, SearchHit};
use crate::freshness::{FreshnessMode, Watermark};
use crate::scope::Scope;

/// How a packet was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionPath {
    /// Served from the reuse cache.
    ContextReuseHit,
    /// Fetched from the backend (or blocked before it).
    BackendFetch,
}

impl ExecutionPath {
    /// The contract's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ContextReuseHit => "context_reuse_hit",
            Self::BackendFetch => "backend_fetch",
        }
    }
}

/// Where one served item came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemSource {
    /// The reuse cache.
    ContextReuse,
    /// The backend, for this request.
    Backend,
}

impl ItemSource {
    /// The contract's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ContextReuse => "context_reuse",
            Self::Backend => "backend",
        }
    }
}

/// Why an item was left out of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OmissionReason {
    /// Older than what the ledger acknowledged.
    StalePruned,
    /// Outside the request's scope.
    ScopeFiltered,
    /// Below a relevance threshold.
    BelowThreshold,
    /// A duplicate of another item.
    Deduplicated,
    /// Did not match the filter.
    FilterMismatch,
    /// Cut by rank (or the backend stopped short).
    RankCutoff,
    /// Over the context budget.
    ContextBudgetExceeded,
    /// Refused by the host's checks of the backend's answer.
    VerifierRejected,
}

impl OmissionReason {
    /// The contract's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StalePruned => "stale_pruned",
            Self::ScopeFiltered => "scope_filtered",
            Self::BelowThreshold => "below_threshold",
            Self::Deduplicated => "deduplicated",
            Self::FilterMismatch => "filter_mismatch",
            Self::RankCutoff => "rank_cutoff",
            Self::ContextBudgetExceeded => "context_budget_exceeded",
            Self::VerifierRejected => "verifier_rejected",
        }
    }
}

/// An item left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Omission {
    /// The document id, or `request` for what concerns the whole answer.
    pub id: String,
    /// Why.
    pub reason: OmissionReason,
    /// Detail for people.
    pub detail: Option<String>,
}

/// A backend item pruned as stale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StalePruned {
    /// The document.
    pub doc_id: String,
    /// The generation of the acknowledged change it is older than.
    pub stale_at_generation: u64,
    /// Why.
    pub reason: String,
}

/// A backend answer shorter than `top_k` while more matches may exist in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShortAnswer {
    /// The `top_k` asked for.
    pub requested: u32,
    /// How many hits came back.
    pub returned: u32,
}

/// A backend's hits after the host's checks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CheckedHits {
    /// The hits that may be served, ranked, at most `top_k`.
    pub items: Vec<CachedItem>,
    /// Hits refused (duplicates, non-finite scores, beyond `top_k`).
    pub rejected: Vec<Omission>,
    /// What the checks found.
    pub notes: Vec<Note>,
    /// Whether any hit belonged to another scope: the whole answer is then refused.
    pub scope_violation: bool,
}

/// Checks a backend's raw hits for a request of `scope` asking for `top_k`: connector output is
/// untrusted input. A hit of another scope refuses the whole answer (a store that returns one
/// foreign row may have returned others under the right label); duplicates, non-finite scores
/// and hits beyond `top_k` are refused one by one; hits out of score order are reported.
pub fn check_hits(
    scope: &Scope,
    top_k: u32,
    include_content: bool,
    hits: Vec<SearchHit>,
    retrieved_at_ms: i64,
) -> CheckedHits {
    let mut checked = CheckedHits::default();
    let mut seen = BTreeSet::new();
    let mut previous_score = f32::INFINITY;
    let mut out_of_order = false;
    for hit in hits {
        let document = hit.document;
        if document.scope != *scope {
            checked.scope_violation = true;
            continue;
        }
        if !seen.insert(document.id.clone())
            || checked.items.len() >= top_k as usize
            || !hit.score.is_finite()
        {
            checked.rejected.push(Omission {
                id: document.id.to_string(),
                reason: OmissionReason::VerifierRejected,
                detail: Some("duplicate, non-finite score, or beyond top_k".to_owned()),
            });
            continue;
        }
        out_of_order |= hit.score > previous_score;
        previous_score = hit.score;
        checked.items.push(CachedItem {
            id: document.id,
            score: hit.score,
            content: if include_content { document.content } else { None },
            metadata: document.metadata,
            revision: document.revision,
            watermark: document.watermark,
            retrieved_at_ms,
        });
    }
    if checked.scope_violation {
        checked.notes.push(Note::new(
            DiagnosticCode::ConnectorScopeViolation,
            Severity::Error,
            "the store returned a document of another scope; no item of its answer is served",
        ));
    }
    if out_of_order {
        checked.notes.push(Note::new(
            DiagnosticCode::ContextGuardRejected,
            Severity::Warning,
            "the store returned hits out of score order; they were served in its order",
        ));
    }
    checked
}

/// What the ledger said about a fetched answer's documents, read after the fetch.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct LedgerAfter {
    /// The runtime generation at the read.
    pub current_generation: u64,
    /// The acknowledged facts of the answer's documents, by document id (those the ledger knows).
    pub documents: BTreeMap<String, DocumentFacts>,
}

/// A backend's answer to the search, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The checked hits.
    pub hits: CheckedHits,
    /// Set when the answer is short and the store did not say the scope is exhausted.
    pub short: Option<ShortAnswer>,
    /// The ledger read after the fetch; `None` when it could not be read.
    pub ledger_after: Option<LedgerAfter>,
}

/// What the backend did for this retrieve.
#[derive(Debug, Clone, PartialEq)]
pub enum Backend {
    /// The planner did not ask it (blocked or reused).
    NotAsked,
    /// The call failed; `kind` is the error kind's name (never the store's own message, which
    /// may quote private data).
    Failed {
        /// The connector error kind.
        kind: String,
    },
    /// It answered.
    Answered(Answer),
}

/// The facts a retrieve settles on.
#[derive(Debug, Clone, Copy)]
pub struct SettleInput<'a> {
    /// The planner's decision.
    pub decision: &'a Decision,
    /// The reuse cache's entry for the request, refreshed against the ledger
    /// ([`super::refresh_entry`]).
    pub entry: Option<&'a CacheEntry>,
    /// The generation the answer is proven at; a fetched answer is cached at it.
    pub generation: u64,
    /// What the backend did.
    pub backend: &'a Backend,
    /// Whom a new cache entry belongs to: `(tenant_id, namespace, store_id)`.
    pub owner: (&'a str, &'a str, &'a str),
}

/// What a retrieve serves.
#[derive(Debug, Clone, PartialEq)]
pub struct Settlement {
    /// The mode it is served in.
    pub served_mode: FreshnessMode,
    /// The items, ranked, with where each came from.
    pub items: Vec<(CachedItem, ItemSource)>,
    /// Items left out.
    pub omissions: Vec<Omission>,
    /// Every diagnostic, in the order raised.
    pub notes: Vec<Note>,
    /// Items pruned as stale.
    pub stale_pruned: Vec<StalePruned>,
    /// The packet status.
    pub status: PacketStatus,
    /// How it was produced.
    pub execution_path: ExecutionPath,
    /// The generation the answer is proven at.
    pub generation: u64,
    /// Whether the backend answered short of `top_k` with more matches possible.
    pub short: bool,
    /// Why it is degraded or blocked, for people.
    pub degradation_reason: Option<String>,
    /// The entry to cache, when the answer may be reused.
    pub cache_entry: Option<CacheEntry>,
}

/// The backend failed and nothing may stand in for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the backend failed ({kind}) and no reusable context may stand in")]
pub struct BackendFailed {
    /// The connector error kind.
    pub kind: String,
}

/// Settles a retrieve (contract §6): what is served once the planner has decided and the
/// backend, if asked, has answered.
///
/// A fetched answer is reusable only when the ledger could be read after the fetch, nothing in
/// it is stale or newer than `generation`, it is not short, and its hits passed the checks; an
/// eventual answer that keeps a stale item is served flagged and never cached, so no stricter
/// request can reuse it.
///
/// # Errors
///
/// The backend failed and the decision allows no stale fallback.
pub fn settle(input: SettleInput<'_>) -> Result<Settlement, BackendFailed> {
    let decision = input.decision;
    let mut settlement = Settlement {
        served_mode: decision.served_mode,
        items: Vec::new(),
        omissions: Vec::new(),
        notes: decision.notes.clone(),
        stale_pruned: Vec::new(),
        status: PacketStatus::Complete,
        execution_path: ExecutionPath::BackendFetch,
        generation: input.generation,
        short: false,
        degradation_reason: None,
        cache_entry: None,
    };
    let degraded_by_notes = decision.notes.iter().any(|note| note.code.degrades());
    match (decision.action, input.backend) {
        (Action::Block, _) => {
            settlement.status = PacketStatus::StaleBlocked;
            settlement.degradation_reason = decision.notes.first().map(|note| note.message.clone());
        }
        (Action::Reuse { stale }, _) => {
            settlement.execution_path = ExecutionPath::ContextReuseHit;
            settlement.items = reused(input.entry);
            settlement.status = packet_status(false, stale || degraded_by_notes, 0, false);
            settlement.degradation_reason =
                stale.then(|| "stale reusable context served (eventual)".to_owned());
        }
        (Action::Fetch { fallback }, Backend::Failed { kind }) => match input.entry {
            Some(entry) if fallback => {
                settlement.notes.push(Note::new(
                    DiagnosticCode::StaleReuseServed,
                    Severity::Warning,
                    format!("the backend failed ({kind}); stale reusable context was served"),
                ));
                settlement.execution_path = ExecutionPath::ContextReuseHit;
                settlement.items = reused(Some(entry));
                settlement.status = PacketStatus::Degraded;
                settlement.degradation_reason = Some(format!("backend unavailable ({kind})"));
            }
            _ => return Err(BackendFailed { kind: kind.clone() }),
        },
        (Action::Fetch { .. }, Backend::Answered(answer)) => {
            settle_answer(&mut settlement, &input, answer, degraded_by_notes);
        }
        (Action::Fetch { .. }, Backend::NotAsked) => {
            // The serving path always asks the backend after a fetch decision; a caller that did
            // not has nothing to serve, which is a refusal, never an empty success.
            settlement.status = PacketStatus::StaleBlocked;
            settlement.degradation_reason = Some("the backend was not asked".to_owned());
        }
    }
    Ok(settlement)
}

fn reused(entry: Option<&CacheEntry>) -> Vec<(CachedItem, ItemSource)> {
    entry
        .map(|entry| {
            entry.items.iter().map(|item| (item.clone(), ItemSource::ContextReuse)).collect()
        })
        .unwrap_or_default()
}

fn settle_answer(
    settlement: &mut Settlement,
    input: &SettleInput<'_>,
    answer: &Answer,
    degraded_by_notes: bool,
) {
    let generation = input.generation;
    let served_mode = settlement.served_mode;
    settlement.notes.extend(answer.hits.notes.iter().cloned());
    settlement.omissions.extend(answer.hits.rejected.iter().cloned());
    if answer.hits.scope_violation {
        settlement.status = PacketStatus::StaleBlocked;
        settlement.degradation_reason =
            Some("the store returned documents of another scope".to_owned());
        return;
    }
    let Some(after) = &answer.ledger_after else {
        if served_mode == FreshnessMode::Strict {
            settlement.notes.push(Note::new(
                DiagnosticCode::WatermarkLookupFailed,
                Severity::Error,
                "the freshness ledger could not be read after the fetch",
            ));
            settlement.status = PacketStatus::StaleBlocked;
            settlement.degradation_reason =
                Some("the freshness ledger could not be read".to_owned());
            return;
        }
        settlement.items = backend_items(&answer.hits.items);
        finish_fetch(settlement, answer.short, degraded_by_notes, None);
        return;
    };
    if after.current_generation > generation {
        settlement.notes.push(Note::new(
            DiagnosticCode::GenerationAdvancedDuringRetrieval,
            Severity::Info,
            format!(
                "the generation moved from {generation} to {} during the fetch",
                after.current_generation
            ),
        ));
    }
    let mut cacheable = true;
    for item in &answer.hits.items {
        let facts = after.documents.get(item.id.as_str());
        let verdict = facts.map(|facts| assess_item(item.revision.as_ref(), item.watermark, facts));
        match verdict {
            Some(ItemVerdict::Stale { detail, stale_at_generation, tombstone }) => {
                cacheable = false;
                if served_mode == FreshnessMode::Eventual {
                    settlement.notes.push(Note::new(
                        DiagnosticCode::StaleReuseServed,
                        Severity::Warning,
                        format!("{} may be stale (eventual): {detail}", item.id),
                    ));
                    settlement.items.push((item.clone(), ItemSource::Backend));
                    continue;
                }
                if tombstone {
                    settlement.notes.push(Note::new(
                        DiagnosticCode::TombstonePruned,
                        Severity::Info,
                        format!("{} was deleted; the store still returned it", item.id),
                    ));
                }
                settlement.omissions.push(Omission {
                    id: item.id.to_string(),
                    reason: OmissionReason::StalePruned,
                    detail: Some(detail.clone()),
                });
                settlement.stale_pruned.push(StalePruned {
                    doc_id: item.id.to_string(),
                    stale_at_generation,
                    reason: detail,
                });
            }
            Some(ItemVerdict::Keep) | None => {
                // A document acknowledged after `generation` may be newer than the generation
                // the entry would be cached at: serve it, but do not cache the answer.
                cacheable &= facts.is_none_or(|facts| facts.generation <= generation);
                settlement.items.push((item.clone(), ItemSource::Backend));
            }
        }
    }
    let entry = cacheable.then(|| CacheEntry {
        items: settlement.items.iter().map(|(item, _)| item.clone()).collect(),
        generation,
        tenant_id: input.owner.0.to_owned(),
        namespace: input.owner.1.to_owned(),
        store_id: input.owner.2.to_owned(),
        invalidated_at: None,
    });
    finish_fetch(settlement, answer.short, degraded_by_notes, entry);
}

fn backend_items(items: &[CachedItem]) -> Vec<(CachedItem, ItemSource)> {
    items.iter().map(|item| (item.clone(), ItemSource::Backend)).collect()
}

/// The shortfall's notes and omission, the status, and the entry to cache unless short.
fn finish_fetch(
    settlement: &mut Settlement,
    short: Option<ShortAnswer>,
    degraded_by_notes: bool,
    entry: Option<CacheEntry>,
) {
    if let Some(short) = short {
        settlement.notes.push(Note::new(
            DiagnosticCode::ContextGuardRejected,
            Severity::Warning,
            format!(
                "the store returned {} of {} items: its index stopped scanning early",
                short.returned, short.requested
            ),
        ));
        settlement.omissions.push(Omission {
            id: "request".to_owned(),
            reason: OmissionReason::RankCutoff,
            detail: Some(format!(
                "{} of {} returned; the index scan limit was reached",
                short.returned, short.requested
            )),
        });
    }
    settlement.short = short.is_some();
    settlement.status =
        packet_status(false, degraded_by_notes, settlement.stale_pruned.len(), settlement.short);
    settlement.cache_entry = if settlement.short { None } else { entry };
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
