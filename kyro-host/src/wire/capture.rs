//! The capture export (`ReplayCaptureExport`, schema version 4): its primers, each step's
//! observed record and (ours) the request and the planner's inputs of each step.
//!
//! The records and plans here mirror `kyro_core::replay`'s types field for field and convert
//! both ways, so the core can change its own representation without changing what clients see.

use kyro_core::planner::{DiagnosticCode, Invalidation, ItemSource, ShortAnswer};
use kyro_core::replay::{
    Candidate, DocumentPlan, Observed, ReplayItem, ReplayRecord, StepPlan, StepStatus, StepType,
};
use kyro_core::{FreshnessMode, OwnershipMode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::strict::{objects, present, present_object};

/// One entry of a replay primer's scope generations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScopeGenerationDto {
    /// The scope key (`namespace:acme/support`, `tenant:acme`, `all`, ...).
    pub(crate) scope: String,
    pub(crate) generation: u64,
    /// When its latest change was acknowledged (RFC 3339).
    pub(crate) acknowledged_at: String,
    /// What produced that change.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) invalidation: Option<String>,
}

/// One entry of a replay primer's processed change events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProcessedEventDto {
    /// The tenant whose idempotency keys the event's id is unique among; absent for events
    /// whose scope named no tenant (ours: the contract's entries are loose objects).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) tenant_id: Option<String>,
    pub(crate) source_event_id: String,
    pub(crate) original_generation: u64,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) event_fingerprint: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) idempotency_key: Option<String>,
}

/// The contract's `ReplayPrimerState`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayPrimer {
    #[serde(default)]
    pub(crate) current_generation: u64,
    #[serde(default, deserialize_with = "objects")]
    pub(crate) scope_generations: Vec<ScopeGenerationDto>,
    #[serde(default, deserialize_with = "objects")]
    pub(crate) processed_change_events: Vec<ProcessedEventDto>,
}

/// One item a step returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReplayItemDto {
    pub(crate) id: String,
    pub(crate) source: ItemSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) doc_revision: Option<String>,
}

/// The contract's `ReplayRecord`: what one step answered. The contract's fields come first;
/// the rest are ours (the contract allows more fields here), and are what the diff and the run
/// summaries read beyond status and generation. A record without them (one not exported by
/// this runtime) reads as having none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ReplayRecordDto {
    pub(crate) step_index: u64,
    pub(crate) label: String,
    pub(crate) step_type: StepType,
    pub(crate) status: StepStatus,
    pub(crate) generation: u64,
    pub(crate) warnings: Vec<String>,
    #[serde(deserialize_with = "objects")]
    pub(crate) items: Vec<ReplayItemDto>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) ownership_mode: Option<OwnershipMode>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) requested_freshness_mode: Option<FreshnessMode>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) served_freshness_mode: Option<FreshnessMode>,
    /// Whether a retrieve was answered from the reuse cache.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) cache_hit: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) stale_pruned: Vec<String>,
    /// The codes of every diagnostic note a retrieve raised, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) diagnostic_codes: Vec<DiagnosticCode>,
    /// A change whose idempotency key was already processed: accepted, and it changed nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) deduplicated: bool,
    /// The trace a retrieve wrote.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) trace_id: Option<String>,
    /// How long a retrieve took to answer, as its trace says.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) latency_ms: Option<f64>,
}

impl ReplayRecordDto {
    /// The record of a core one, with what the capture knows beyond it.
    pub(crate) fn new(
        record: &ReplayRecord,
        trace_id: Option<String>,
        latency_ms: Option<f64>,
    ) -> Self {
        let observed = &record.observed;
        Self {
            step_index: record.step_index,
            label: record.label.clone(),
            step_type: record.step_type,
            status: record.status,
            generation: record.generation,
            warnings: observed.warnings.clone(),
            items: observed
                .items
                .iter()
                .map(|item| ReplayItemDto {
                    id: item.id.clone(),
                    source: item.source,
                    doc_revision: item.doc_revision.clone(),
                })
                .collect(),
            ownership_mode: observed.ownership_mode,
            requested_freshness_mode: observed.requested_mode,
            served_freshness_mode: observed.served_mode,
            cache_hit: observed.cache_hit,
            stale_pruned: observed.stale_pruned.clone(),
            diagnostic_codes: observed.diagnostic_codes.clone(),
            deduplicated: observed.deduplicated,
            trace_id,
            latency_ms,
        }
    }

    pub(crate) fn to_core(&self) -> ReplayRecord {
        ReplayRecord {
            step_index: self.step_index,
            label: self.label.clone(),
            step_type: self.step_type,
            status: self.status,
            generation: self.generation,
            observed: Observed {
                ownership_mode: self.ownership_mode,
                requested_mode: self.requested_freshness_mode,
                served_mode: self.served_freshness_mode,
                cache_hit: self.cache_hit,
                warnings: self.warnings.clone(),
                items: self
                    .items
                    .iter()
                    .map(|item| ReplayItem {
                        id: item.id.clone(),
                        source: item.source,
                        doc_revision: item.doc_revision.clone(),
                    })
                    .collect(),
                stale_pruned: self.stale_pruned.clone(),
                diagnostic_codes: self.diagnostic_codes.clone(),
                deduplicated: self.deduplicated,
            },
        }
    }
}

/// A backend item a captured retrieve saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CandidateDto {
    pub(crate) id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) watermark: Option<u64>,
}

/// A captured change's facts about one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DocumentPlanDto {
    pub(crate) tenant_id: String,
    pub(crate) namespace: String,
    pub(crate) doc_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) watermark: Option<u64>,
    pub(crate) tombstone: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) event_timestamp_ms: Option<i64>,
}

/// Which reuse entries a captured change covered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum InvalidationDto {
    All,
    Tenant {
        tenant_id: String,
    },
    Namespace {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant_id: Option<String>,
        namespace: String,
    },
    Document {
        tenant_id: String,
        namespace: String,
        doc_id: String,
    },
    Store {
        store_id: String,
    },
}

/// The planner's inputs for one captured step (ours: what counterfactual replay re-runs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum StepPlanDto {
    Retrieve {
        fingerprint: u64,
        requested_mode: FreshnessMode,
        production: bool,
        store_id: String,
        ownership: OwnershipMode,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        required_generation: Option<u64>,
        read_keys: Vec<String>,
        tenant_id: String,
        namespace: String,
        #[serde(default)]
        candidates: Vec<CandidateDto>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        short: Option<ShortAnswerDto>,
    },
    Change {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source_event_id: Option<String>,
        scope_keys: Vec<String>,
        #[serde(default)]
        documents: Vec<DocumentPlanDto>,
        invalidation: InvalidationDto,
    },
}

/// A short backend answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShortAnswerDto {
    pub(crate) requested: u32,
    pub(crate) returned: u32,
}

impl From<&Invalidation> for InvalidationDto {
    fn from(invalidation: &Invalidation) -> Self {
        match invalidation.clone() {
            Invalidation::All => Self::All,
            Invalidation::Tenant { tenant_id } => Self::Tenant { tenant_id },
            Invalidation::Namespace { tenant_id, namespace } => {
                Self::Namespace { tenant_id, namespace }
            }
            Invalidation::Document { tenant_id, namespace, doc_id } => {
                Self::Document { tenant_id, namespace, doc_id }
            }
            Invalidation::Store { store_id } => Self::Store { store_id },
        }
    }
}

impl From<&InvalidationDto> for Invalidation {
    fn from(invalidation: &InvalidationDto) -> Self {
        match invalidation.clone() {
            InvalidationDto::All => Self::All,
            InvalidationDto::Tenant { tenant_id } => Self::Tenant { tenant_id },
            InvalidationDto::Namespace { tenant_id, namespace } => {
                Self::Namespace { tenant_id, namespace }
            }
            InvalidationDto::Document { tenant_id, namespace, doc_id } => {
                Self::Document { tenant_id, namespace, doc_id }
            }
            InvalidationDto::Store { store_id } => Self::Store { store_id },
        }
    }
}

impl From<&StepPlan> for StepPlanDto {
    fn from(plan: &StepPlan) -> Self {
        match plan.clone() {
            StepPlan::Retrieve {
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
            } => Self::Retrieve {
                fingerprint,
                requested_mode,
                production,
                store_id,
                ownership,
                required_generation,
                read_keys,
                tenant_id,
                namespace,
                candidates: candidates
                    .into_iter()
                    .map(|Candidate { id, revision, watermark }| CandidateDto {
                        id,
                        revision,
                        watermark,
                    })
                    .collect(),
                short: short.map(|ShortAnswer { requested, returned }| ShortAnswerDto {
                    requested,
                    returned,
                }),
            },
            StepPlan::Change { source_event_id, scope_keys, documents, invalidation } => {
                Self::Change {
                    source_event_id,
                    scope_keys,
                    documents: documents
                        .into_iter()
                        .map(|document| DocumentPlanDto {
                            tenant_id: document.tenant_id,
                            namespace: document.namespace,
                            doc_id: document.doc_id,
                            revision: document.revision,
                            watermark: document.watermark,
                            tombstone: document.tombstone,
                            event_timestamp_ms: document.event_timestamp_ms,
                        })
                        .collect(),
                    invalidation: InvalidationDto::from(&invalidation),
                }
            }
        }
    }
}

impl From<&StepPlanDto> for StepPlan {
    fn from(plan: &StepPlanDto) -> Self {
        match plan.clone() {
            StepPlanDto::Retrieve {
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
            } => Self::Retrieve {
                fingerprint,
                requested_mode,
                production,
                store_id,
                ownership,
                required_generation,
                read_keys,
                tenant_id,
                namespace,
                candidates: candidates
                    .into_iter()
                    .map(|CandidateDto { id, revision, watermark }| Candidate {
                        id,
                        revision,
                        watermark,
                    })
                    .collect(),
                short: short.map(|ShortAnswerDto { requested, returned }| ShortAnswer {
                    requested,
                    returned,
                }),
            },
            StepPlanDto::Change { source_event_id, scope_keys, documents, invalidation } => {
                Self::Change {
                    source_event_id,
                    scope_keys,
                    documents: documents
                        .into_iter()
                        .map(|document| DocumentPlan {
                            tenant_id: document.tenant_id,
                            namespace: document.namespace,
                            doc_id: document.doc_id,
                            revision: document.revision,
                            watermark: document.watermark,
                            tombstone: document.tombstone,
                            event_timestamp_ms: document.event_timestamp_ms,
                        })
                        .collect(),
                    invalidation: Invalidation::from(&invalidation),
                }
            }
        }
    }
}

/// A replayable request (ours).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CapturedRequest {
    /// The route it was served on.
    pub(crate) route: String,
    /// The body, as sent.
    pub(crate) body: Value,
    /// The `Idempotency-Key` header, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) idempotency_key: Option<String>,
}

/// One exported step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CaptureStep {
    pub(crate) sequence: i64,
    #[serde(default, deserialize_with = "present_object", skip_serializing_if = "Option::is_none")]
    pub(crate) observed_record: Option<ReplayRecordDto>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub(crate) captured_at: Option<String>,
    #[serde(default, deserialize_with = "present_object", skip_serializing_if = "Option::is_none")]
    pub(crate) pre_step_replay_primer: Option<ReplayPrimer>,
    #[serde(default, deserialize_with = "present_object", skip_serializing_if = "Option::is_none")]
    pub(crate) request: Option<CapturedRequest>,
    #[serde(default, deserialize_with = "present_object", skip_serializing_if = "Option::is_none")]
    pub(crate) plan: Option<StepPlanDto>,
}

/// The contract's `ReplayCaptureExport` (schema version 4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CaptureExport {
    pub(crate) schema_version: u32,
    pub(crate) generated_at: String,
    pub(crate) total_steps: usize,
    #[serde(deserialize_with = "objects")]
    pub(crate) steps: Vec<CaptureStep>,
    #[serde(default, deserialize_with = "present_object", skip_serializing_if = "Option::is_none")]
    pub(crate) replay_primer: Option<ReplayPrimer>,
}
