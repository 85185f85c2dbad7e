//! Replay documents: the capture export with its primers, records and (ours) the request and
//! the planner's inputs of each step; the shadow-session request and answer; the replay-diff
//! and counterfactual requests.
//!
//! The records and plans here mirror `kyro_core::replay`'s types field for field and convert
//! both ways, so the core can change its own representation without changing what clients see.

use kyro_core::planner::{Invalidation, ItemSource, ShortAnswer};
use kyro_core::replay::{
    Candidate, DocumentPlan, Intervention, Observed, ReplayItem, ReplayRecord, StepPlan,
    StepStatus, StepType,
};
use kyro_core::{FreshnessMode, OwnershipMode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::request::present;

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
    #[serde(default)]
    pub(crate) scope_generations: Vec<ScopeGenerationDto>,
    #[serde(default)]
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

/// The contract's `ReplayRecord` (extra fields are ours: the contract allows them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReplayRecordDto {
    pub(crate) step_index: u64,
    pub(crate) label: String,
    pub(crate) step_type: StepType,
    pub(crate) status: StepStatus,
    pub(crate) generation: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ownership_mode: Option<OwnershipMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) served_mode: Option<FreshnessMode>,
    #[serde(default)]
    pub(crate) warnings: Vec<String>,
    #[serde(default)]
    pub(crate) items: Vec<ReplayItemDto>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) stale_pruned: Vec<String>,
}

impl From<&ReplayRecord> for ReplayRecordDto {
    fn from(record: &ReplayRecord) -> Self {
        let observed = &record.observed;
        Self {
            step_index: record.step_index,
            label: record.label.clone(),
            step_type: record.step_type,
            status: record.status,
            generation: record.generation,
            ownership_mode: observed.ownership_mode,
            served_mode: observed.served_mode,
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
            stale_pruned: observed.stale_pruned.clone(),
        }
    }
}

impl ReplayRecordDto {
    pub(crate) fn to_core(&self) -> ReplayRecord {
        ReplayRecord {
            step_index: self.step_index,
            label: self.label.clone(),
            step_type: self.step_type,
            status: self.status,
            generation: self.generation,
            observed: Observed {
                ownership_mode: self.ownership_mode,
                served_mode: self.served_mode,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) observed_record: Option<ReplayRecordDto>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) captured_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pre_step_replay_primer: Option<ReplayPrimer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) request: Option<CapturedRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) plan: Option<StepPlanDto>,
}

/// The contract's `ReplayCaptureExport` (schema version 4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CaptureExport {
    pub(crate) schema_version: u32,
    pub(crate) generated_at: String,
    pub(crate) total_steps: usize,
    pub(crate) steps: Vec<CaptureStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) replay_primer: Option<ReplayPrimer>,
}

/// `POST /v1/replay/diff`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DiffRequest {
    pub(crate) baseline: CaptureExport,
    pub(crate) candidate: CaptureExport,
}

/// A counterfactual change to a capture's steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum InterventionDto {
    DropStep { step_index: u64 },
    MoveStepBefore { step_index: u64, before_step_index: u64 },
    MoveStepAfter { step_index: u64, after_step_index: u64 },
}

impl From<InterventionDto> for Intervention {
    fn from(intervention: InterventionDto) -> Self {
        match intervention {
            InterventionDto::DropStep { step_index } => Self::DropStep { step_index },
            InterventionDto::MoveStepBefore { step_index, before_step_index } => {
                Self::MoveStepBefore { step_index, before_step_index }
            }
            InterventionDto::MoveStepAfter { step_index, after_step_index } => {
                Self::MoveStepAfter { step_index, after_step_index }
            }
        }
    }
}

/// A counterfactual scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Scenario {
    #[serde(default)]
    pub(crate) interventions: Vec<InterventionDto>,
}

/// `POST /v1/replay/counterfactual`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CounterfactualRequest {
    pub(crate) capture: CaptureExport,
    pub(crate) scenario: Scenario,
}

/// `POST /v1/replay/shadow-sessions`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShadowSessionRequest {
    pub(crate) schema_version: u32,
    pub(crate) replay_primer: ReplayPrimer,
    #[serde(default, deserialize_with = "present")]
    pub(crate) allow_connector_mutations: Option<bool>,
}

/// The answer to a shadow-session request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ShadowSessionCreated {
    pub(crate) schema_version: u32,
    pub(crate) session_id: String,
    pub(crate) expires_at: String,
}
