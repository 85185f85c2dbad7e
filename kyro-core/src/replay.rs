//! Replay: what a captured step observed, how two runs of the same steps differ, and what the
//! planner would have decided had the steps been different (counterfactual replay).
//!
//! The host records each serving step with the facts the planner used ([`StepPlan`]) and what
//! the step answered ([`ReplayRecord`]). [`diff`] compares two runs step by step; [`simulate`]
//! re-runs a sequence of plans against a fresh planner state seeded from a [`PrimerState`],
//! with the backend's captured answers standing in for the backend, so a counterfactual (a step
//! dropped or moved, see [`Intervention`]) costs no IO and touches no live state.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::document::{DocumentId, Metadata, Revision};
use crate::freshness::{FreshnessMode, OwnershipMode, Watermark};
use crate::planner::{
    Action, CacheEntry, CachedItem, DiagnosticCode, DocumentFacts, Fingerprint, Invalidation,
    ItemVerdict, LedgerFacts, ReuseCache, Severity, StoreFacts, assess_item, decide, packet_status,
};

#[cfg(test)]
mod tests;

/// One item a step returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayItem {
    /// The document id.
    pub id: String,
    /// `backend` or `context_reuse`.
    pub source: String,
    /// The revision the store returned, when it keeps one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc_revision: Option<String>,
}

/// What one step answered: the contract's replay record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayRecord {
    /// The step's position in the capture.
    pub step_index: u64,
    /// For people: the route and the scope it acted on.
    pub label: String,
    /// `retrieve`, `change_event`, `invalidate`, `upsert` or `delete`.
    pub step_type: String,
    /// A packet status for retrieves; `accepted`, `replayed` or `rejected` for changes.
    pub status: String,
    /// The generation the step was served at (retrieve) or allocated (change).
    pub generation: u64,
    /// What a retrieve answered beyond its status and generation.
    #[serde(flatten)]
    pub observed: Observed,
}

/// What a retrieve answered beyond its status and generation; empty for changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    /// The ownership mode of the store that served it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownership_mode: Option<String>,
    /// The freshness mode it was served in (ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_mode: Option<String>,
    /// Warnings it answered with.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Items it returned, ranked.
    #[serde(default)]
    pub items: Vec<ReplayItem>,
    /// Documents it pruned as stale (ours).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stale_pruned: Vec<String>,
}

/// An item the backend returned to a captured retrieve, before pruning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// The document id.
    pub id: String,
    /// The revision the store returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The store's row watermark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<u64>,
}

/// A change's facts about one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentPlan {
    /// The tenant.
    pub tenant_id: String,
    /// The namespace.
    pub namespace: String,
    /// The document id.
    pub doc_id: String,
    /// The revision the change named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The store watermark a mutation ACK reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<u64>,
    /// Whether the change deleted it.
    pub tombstone: bool,
    /// The change event's timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_timestamp_ms: Option<i64>,
}

/// The planner's inputs for one captured step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepPlan {
    /// A retrieve.
    Retrieve {
        /// The reuse-cache fingerprint of the request.
        fingerprint: u64,
        /// `strict`, `balanced` or `eventual`, as asked.
        requested_mode: String,
        /// Whether the host ran in production mode.
        production: bool,
        /// The serving store.
        store_id: String,
        /// Its ownership mode.
        ownership: String,
        /// The request's `required_generation`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        required_generation: Option<u64>,
        /// The scope keys whose changes cover the request.
        read_keys: Vec<String>,
        /// The request's tenant.
        tenant_id: String,
        /// The request's namespace.
        namespace: String,
        /// What the backend returned, when the step fetched.
        #[serde(default)]
        candidates: Vec<Candidate>,
        /// Whether the backend answered short of `top_k` before its index was exhausted.
        #[serde(default)]
        short: bool,
    },
    /// A change event, invalidation or verified mutation ACK.
    Change {
        /// The idempotency key, when the change has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source_event_id: Option<String>,
        /// The scope keys it touches.
        scope_keys: Vec<String>,
        /// Its document facts.
        #[serde(default)]
        documents: Vec<DocumentPlan>,
        /// The reuse entries it covers.
        invalidation: Invalidation,
    },
}

/// A planner state to start a replay from: the contract's `ReplayPrimerState`, reduced to what
/// the planner reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrimerState {
    /// The runtime generation.
    pub current_generation: u64,
    /// The generation of each scope key.
    pub scope_generations: BTreeMap<String, u64>,
    /// Change-event ids already processed.
    pub processed_change_events: BTreeSet<String>,
}

/// One step to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct SimStep {
    /// The step's index in the capture; kept through reordering.
    pub step_index: u64,
    /// Its label.
    pub label: String,
    /// Its type.
    pub step_type: String,
    /// What the planner needs.
    pub plan: StepPlan,
}

/// A counterfactual change to a capture's steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Intervention {
    /// Leave a step out.
    DropStep {
        /// The step.
        step_index: u64,
    },
    /// Run a step just before another.
    MoveStepBefore {
        /// The step to move.
        step_index: u64,
        /// The step it runs before.
        before_step_index: u64,
    },
    /// Run a step just after another.
    MoveStepAfter {
        /// The step to move.
        step_index: u64,
        /// The step it runs after.
        after_step_index: u64,
    },
}

/// Applies interventions, in order, to a sequence of steps.
///
/// # Errors
///
/// An intervention names a step that is not (or no longer) in the sequence, or moves a step
/// relative to itself.
pub fn intervene(
    mut steps: Vec<SimStep>,
    interventions: &[Intervention],
) -> Result<Vec<SimStep>, String> {
    let position = |steps: &[SimStep], index: u64| {
        steps
            .iter()
            .position(|step| step.step_index == index)
            .ok_or_else(|| format!("step {index} is not in the capture (or was already dropped)"))
    };
    for intervention in interventions {
        match *intervention {
            Intervention::DropStep { step_index } => {
                let at = position(&steps, step_index)?;
                steps.remove(at);
            }
            Intervention::MoveStepBefore { step_index, before_step_index: anchor }
            | Intervention::MoveStepAfter { step_index, after_step_index: anchor } => {
                if step_index == anchor {
                    return Err(format!("step {step_index} cannot move relative to itself"));
                }
                let step = steps.remove(position(&steps, step_index)?);
                let anchor_at = position(&steps, anchor)?;
                let at = if matches!(intervention, Intervention::MoveStepBefore { .. }) {
                    anchor_at
                } else {
                    anchor_at + 1
                };
                steps.insert(at, step);
            }
        }
    }
    Ok(steps)
}

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

struct SimState {
    generation: u64,
    scopes: BTreeMap<String, u64>,
    processed: BTreeSet<String>,
    documents: BTreeMap<(String, String, String), DocumentFacts>,
    cache: ReuseCache,
}

impl SimState {
    fn run(&mut self, step: &SimStep) -> ReplayRecord {
        let record = |status: &str, generation: u64| ReplayRecord {
            step_index: step.step_index,
            label: step.label.clone(),
            step_type: step.step_type.clone(),
            status: status.to_owned(),
            generation,
            observed: Observed::default(),
        };
        match &step.plan {
            StepPlan::Change { source_event_id, scope_keys, documents, invalidation } => {
                if let Some(id) = source_event_id
                    && !self.processed.insert(id.clone())
                {
                    return record("replayed", self.generation);
                }
                self.generation += 1;
                for key in scope_keys {
                    self.scopes.insert(key.clone(), self.generation);
                }
                for document in documents {
                    self.documents.insert(
                        (
                            document.tenant_id.clone(),
                            document.namespace.clone(),
                            document.doc_id.clone(),
                        ),
                        DocumentFacts {
                            generation: self.generation,
                            revision: document.revision.clone(),
                            watermark: document.watermark,
                            tombstone: document.tombstone,
                            event_timestamp_ms: document.event_timestamp_ms,
                        },
                    );
                }
                self.cache.invalidate(invalidation, self.generation);
                record("accepted", self.generation)
            }
            StepPlan::Retrieve { .. } => self.retrieve(step, record("", 0)),
        }
    }

    fn retrieve(&mut self, step: &SimStep, mut out: ReplayRecord) -> ReplayRecord {
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
        } = &step.plan
        else {
            return out;
        };
        let requested = requested_mode.parse().unwrap_or(FreshnessMode::Strict);
        let ownership_mode: OwnershipMode = ownership.parse().unwrap_or(OwnershipMode::BestEffort);
        out.observed.ownership_mode = Some(ownership.clone());
        out.generation = self.generation;
        let ledger = LedgerFacts {
            current_generation: self.generation,
            scope_generation: read_keys
                .iter()
                .filter_map(|key| self.scopes.get(key))
                .copied()
                .max()
                .unwrap_or(0),
        };
        let fingerprint = Fingerprint(*fingerprint);
        let doc_key = |id: &str| (tenant_id.clone(), namespace.clone(), id.to_owned());
        let cached = self.cache.get(fingerprint).cloned().map(|mut entry| {
            let newest = entry
                .items
                .iter()
                .filter_map(|item| self.documents.get(&doc_key(item.id.as_str())))
                .map(|facts| facts.generation)
                .max();
            if let Some(newest) = newest
                && newest > entry.generation
            {
                entry.invalidated_at = Some(newest);
            }
            entry
        });
        let decision = decide(
            requested,
            *production,
            StoreFacts { ownership: ownership_mode, certified: true },
            Some(ledger),
            *required_generation,
            cached.as_ref(),
        );
        out.observed.served_mode = Some(decision.served_mode.as_str().to_owned());
        let mut notes = decision.notes;
        let degraded_by_notes = notes.iter().any(|note| {
            matches!(
                note.code,
                DiagnosticCode::ConnectorCapabilityMismatch
                    | DiagnosticCode::RequiredGenerationUnsatisfied
            )
        });
        let status = match decision.action {
            Action::Block => packet_status(true, false, 0, false),
            Action::Reuse { stale } => {
                let entry = cached.unwrap_or_else(|| CacheEntry {
                    items: Vec::new(),
                    generation: 0,
                    tenant_id: tenant_id.clone(),
                    namespace: namespace.clone(),
                    store_id: store_id.clone(),
                    invalidated_at: None,
                });
                out.observed.items =
                    entry.items.iter().map(|item| replay_item(item, "context_reuse")).collect();
                packet_status(false, stale || degraded_by_notes, 0, false)
            }
            Action::Fetch { .. } => {
                let mut kept = Vec::new();
                for candidate in candidates {
                    let Ok(item) = cached_item(candidate) else { continue };
                    let verdict = self
                        .documents
                        .get(&doc_key(&candidate.id))
                        .map(|facts| assess_item(item.revision.as_ref(), item.watermark, facts));
                    match verdict {
                        Some(ItemVerdict::Stale { .. })
                            if decision.served_mode != FreshnessMode::Eventual =>
                        {
                            out.observed.stale_pruned.push(candidate.id.clone());
                        }
                        Some(ItemVerdict::Stale { detail, .. }) => {
                            notes.push(crate::planner::Note {
                                code: DiagnosticCode::StaleReuseServed,
                                severity: Severity::Warning,
                                message: format!("{} may be stale (eventual): {detail}", item.id),
                            });
                            kept.push(item);
                        }
                        _ => kept.push(item),
                    }
                }
                out.observed.items = kept.iter().map(|item| replay_item(item, "backend")).collect();
                let newer_document = kept.iter().any(|item| {
                    self.documents
                        .get(&doc_key(item.id.as_str()))
                        .is_some_and(|facts| facts.generation > self.generation)
                });
                if out.observed.stale_pruned.is_empty() && !short && !newer_document {
                    self.cache.insert(
                        fingerprint,
                        CacheEntry {
                            items: kept,
                            generation: self.generation,
                            tenant_id: tenant_id.clone(),
                            namespace: namespace.clone(),
                            store_id: store_id.clone(),
                            invalidated_at: None,
                        },
                    );
                }
                packet_status(false, degraded_by_notes, out.observed.stale_pruned.len(), *short)
            }
        };
        out.status = status.as_str().to_owned();
        out.observed.warnings = notes
            .iter()
            .filter(|note| note.severity != Severity::Info)
            .map(|note| note.message.clone())
            .collect();
        out
    }
}

fn cached_item(candidate: &Candidate) -> Result<CachedItem, crate::ValidationError> {
    Ok(CachedItem {
        id: DocumentId::new(candidate.id.clone())?,
        score: 0.0,
        content: None,
        metadata: Metadata::default(),
        revision: candidate.revision.clone().map(Revision::new).transpose()?,
        watermark: candidate.watermark.map(Watermark),
        retrieved_at_ms: 0,
    })
}

fn replay_item(item: &CachedItem, source: &str) -> ReplayItem {
    ReplayItem {
        id: item.id.to_string(),
        source: source.to_owned(),
        doc_revision: item.revision.as_ref().map(|revision| revision.as_str().to_owned()),
    }
}

/// One field that differs between two runs of a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// The step.
    pub step_index: u64,
    /// Its label.
    pub label: String,
    /// The field: `status`, `generation`, `served_mode`, `ownership_mode`, `warnings`, `items`,
    /// `stale_pruned`, `step_type`.
    pub field: &'static str,
    /// The baseline's value, rendered.
    pub baseline: String,
    /// The candidate's value, rendered.
    pub candidate: String,
}

/// How two runs of the same steps differ.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplayDiff {
    /// Whether the runs answered alike on every step.
    pub identical: bool,
    /// Steps present in both runs.
    pub steps_compared: usize,
    /// Steps whose answers differ.
    pub steps_changed: usize,
    /// Every differing field.
    pub changes: Vec<FieldChange>,
    /// Steps only the baseline ran.
    pub missing_in_candidate: Vec<u64>,
    /// Steps only the candidate ran.
    pub extra_in_candidate: Vec<u64>,
    /// Status transitions counted over changed steps, as `baseline->candidate`.
    pub status_deltas: BTreeMap<String, usize>,
}

/// Compares two runs step by step (paired by `step_index`).
pub fn diff(baseline: &[ReplayRecord], candidate: &[ReplayRecord]) -> ReplayDiff {
    let candidates: BTreeMap<u64, &ReplayRecord> =
        candidate.iter().map(|record| (record.step_index, record)).collect();
    let baseline_indices: BTreeSet<u64> = baseline.iter().map(|record| record.step_index).collect();
    let mut out = ReplayDiff::default();
    for before in baseline {
        let Some(after) = candidates.get(&before.step_index) else {
            out.missing_in_candidate.push(before.step_index);
            continue;
        };
        out.steps_compared += 1;
        let n_before = out.changes.len();
        let mut field = |name: &'static str, left: String, right: String| {
            if left != right {
                out.changes.push(FieldChange {
                    step_index: before.step_index,
                    label: before.label.clone(),
                    field: name,
                    baseline: left,
                    candidate: right,
                });
            }
        };
        field("step_type", before.step_type.clone(), after.step_type.clone());
        field("status", before.status.clone(), after.status.clone());
        field("generation", before.generation.to_string(), after.generation.to_string());
        field(
            "served_mode",
            render_option(&before.observed.served_mode),
            render_option(&after.observed.served_mode),
        );
        field(
            "ownership_mode",
            render_option(&before.observed.ownership_mode),
            render_option(&after.observed.ownership_mode),
        );
        field("warnings", before.observed.warnings.join("; "), after.observed.warnings.join("; "));
        field("items", render_items(&before.observed.items), render_items(&after.observed.items));
        field(
            "stale_pruned",
            before.observed.stale_pruned.join(", "),
            after.observed.stale_pruned.join(", "),
        );
        if out.changes.len() > n_before {
            out.steps_changed += 1;
            if before.status != after.status {
                *out.status_deltas
                    .entry(format!("{}->{}", before.status, after.status))
                    .or_default() += 1;
            }
        }
    }
    out.extra_in_candidate = candidate
        .iter()
        .map(|record| record.step_index)
        .filter(|index| !baseline_indices.contains(index))
        .collect();
    out.identical = out.changes.is_empty()
        && out.missing_in_candidate.is_empty()
        && out.extra_in_candidate.is_empty();
    out
}

fn render_option(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "-".to_owned())
}

fn render_items(items: &[ReplayItem]) -> String {
    items.iter().map(|item| format!("{}({})", item.id, item.source)).collect::<Vec<_>>().join(", ")
}
