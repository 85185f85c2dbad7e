//! Replay: what a captured step observed, how two runs of the same steps differ, and what the
//! planner would have decided had the steps been different (counterfactual replay).
//!
//! The host records each serving step with the facts the planner used ([`StepPlan`]) and what
//! the step answered ([`ReplayRecord`]). [`diff`] compares two runs step by step; [`simulate`]
//! re-runs a sequence of plans against a fresh planner state seeded from a [`PrimerState`],
//! with the backend's captured answers standing in for the backend, so a counterfactual (a step
//! dropped or moved, see [`Intervention`]) costs no IO and touches no live state. The
//! simulation decides and settles through the planner's own functions
//! ([`crate::planner::decide`], [`crate::planner::settle`]): it has no rules of its own.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::freshness::{FreshnessMode, OwnershipMode};
use crate::planner::{
    DiagnosticCode, ExecutionPath, Invalidation, ItemSource, Note, PacketStatus, Settlement,
    ShortAnswer, StalePruned,
};

mod diff;
mod scenario;
mod sim;
mod summary;
#[cfg(test)]
mod tests;

pub use diff::{ReplayDiff, StepDiff, diff};
pub use scenario::{Intervention, intervene, scenario_key, transformed_steps};
pub use sim::{RetrieveFacts, replay_retrieve, simulate};
pub use summary::RunCounts;

/// The kind of a serving step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepType {
    /// `POST /v1/context/retrieve`.
    Retrieve,
    /// `POST /v1/events/change`.
    ChangeEvent,
    /// `POST /v1/context/invalidate`.
    Invalidate,
    /// `POST /v1/documents/upsert`.
    Upsert,
    /// `POST /v1/documents/delete`.
    Delete,
}

impl StepType {
    /// The contract's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retrieve => "retrieve",
            Self::ChangeEvent => "change_event",
            Self::Invalidate => "invalidate",
            Self::Upsert => "upsert",
            Self::Delete => "delete",
        }
    }
}

/// What a step answered: a packet status for a retrieve, the ledger's outcome for a change, a
/// mutation's outcome for an upsert or delete. The names are the contract's replay statuses
/// (the SDK's `ReplayStatus`); a change event whose id was already processed is `accepted`
/// with [`Observed::deduplicated`] set, as its answer says (`accepted: true`, the original
/// generation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// A retrieve answered `complete`.
    Complete,
    /// A retrieve answered `partial`.
    Partial,
    /// A retrieve answered `degraded`.
    Degraded,
    /// A retrieve answered `stale_blocked`.
    StaleBlocked,
    /// A change was applied (or, deduplicated, had been).
    Accepted,
    /// A change repeated an already processed idempotency key with another body.
    Rejected,
    /// A mutation inserted its document.
    Inserted,
    /// A mutation updated its document.
    Updated,
    /// A mutation deleted its document.
    Deleted,
    /// A mutation found no document to change.
    NotFound,
    /// The step failed.
    Error,
}

impl StepStatus {
    /// Every status with its contract name.
    pub const NAMES: [(Self, &'static str); 11] = [
        (Self::Complete, "complete"),
        (Self::Partial, "partial"),
        (Self::Degraded, "degraded"),
        (Self::StaleBlocked, "stale_blocked"),
        (Self::Accepted, "accepted"),
        (Self::Rejected, "rejected"),
        (Self::Inserted, "inserted"),
        (Self::Updated, "updated"),
        (Self::Deleted, "deleted"),
        (Self::NotFound, "not_found"),
        (Self::Error, "error"),
    ];

    /// The contract's name.
    pub fn as_str(self) -> &'static str {
        Self::NAMES.iter().find(|(status, _)| *status == self).map_or("error", |(_, name)| name)
    }

    /// The packet status of a retrieve's step status; `None` for the statuses of changes and
    /// mutations.
    pub fn packet_status(self) -> Option<PacketStatus> {
        match self {
            Self::Complete => Some(PacketStatus::Complete),
            Self::Partial => Some(PacketStatus::Partial),
            Self::Degraded => Some(PacketStatus::Degraded),
            Self::StaleBlocked => Some(PacketStatus::StaleBlocked),
            _ => None,
        }
    }
}

impl From<PacketStatus> for StepStatus {
    fn from(status: PacketStatus) -> Self {
        match status {
            PacketStatus::Complete => Self::Complete,
            PacketStatus::Partial => Self::Partial,
            PacketStatus::Degraded => Self::Degraded,
            PacketStatus::StaleBlocked => Self::StaleBlocked,
        }
    }
}

/// One item a step returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayItem {
    /// The document id.
    pub id: String,
    /// Where it came from.
    pub source: ItemSource,
    /// The revision the store returned, when it keeps one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc_revision: Option<String>,
}

/// What one step answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayRecord {
    /// The step's position in the capture.
    pub step_index: u64,
    /// For people: the route and the scope it acted on.
    pub label: String,
    /// The step's kind.
    pub step_type: StepType,
    /// What it answered.
    pub status: StepStatus,
    /// The generation the step was served at (retrieve) or allocated (change).
    pub generation: u64,
    /// What a retrieve answered beyond its status and generation.
    #[serde(flatten)]
    pub observed: Observed,
}

/// What a step answered beyond its status and generation: for a retrieve, its modes, path,
/// items and notes; for a change, whether it was a duplicate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    /// The ownership mode of the store that served it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownership_mode: Option<OwnershipMode>,
    /// The freshness mode asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_mode: Option<FreshnessMode>,
    /// The freshness mode it was served in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_mode: Option<FreshnessMode>,
    /// Whether it was answered from the reuse cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_hit: Option<bool>,
    /// Warnings it answered with.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Items it returned, ranked.
    #[serde(default)]
    pub items: Vec<ReplayItem>,
    /// Documents it pruned as stale.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stale_pruned: Vec<String>,
    /// The codes of every diagnostic note it raised, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostic_codes: Vec<DiagnosticCode>,
    /// A change whose idempotency key was already processed: it changed nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deduplicated: bool,
}

impl Observed {
    /// What a settled retrieve answered, as a replay records it. The serving path captures
    /// this and the simulator produces it, from the same settlement.
    pub fn of(settlement: &Settlement, requested: FreshnessMode, ownership: OwnershipMode) -> Self {
        Self {
            ownership_mode: Some(ownership),
            requested_mode: Some(requested),
            served_mode: Some(settlement.served_mode),
            cache_hit: Some(settlement.execution_path == ExecutionPath::ContextReuseHit),
            warnings: warnings(&settlement.notes),
            items: settlement
                .items
                .iter()
                .map(|(item, source)| ReplayItem {
                    id: item.id.to_string(),
                    source: *source,
                    doc_revision: item
                        .revision
                        .as_ref()
                        .map(|revision| revision.as_str().to_owned()),
                })
                .collect(),
            stale_pruned: settlement
                .stale_pruned
                .iter()
                .map(|pruned: &StalePruned| pruned.doc_id.clone())
                .collect(),
            diagnostic_codes: settlement.notes.iter().map(|note| note.code).collect(),
            deduplicated: false,
        }
    }
}

/// The packet warnings of a set of notes: the messages of those above `info`.
pub fn warnings(notes: &[Note]) -> Vec<String> {
    notes
        .iter()
        .filter(|note| note.severity != crate::planner::Severity::Info)
        .map(|note| note.message.clone())
        .collect()
}

/// An item the backend returned to a captured retrieve, after the host's checks and before
/// pruning.
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
        /// The freshness mode asked for.
        requested_mode: FreshnessMode,
        /// Whether the host ran in production mode.
        production: bool,
        /// The serving store.
        store_id: String,
        /// Its ownership mode.
        ownership: OwnershipMode,
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
        /// Whether the backend answered short of `top_k` while more matches may exist.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        short: Option<ShortAnswer>,
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
    pub step_type: StepType,
    /// What the planner needs.
    pub plan: StepPlan,
}
