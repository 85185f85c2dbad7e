//! Replay documents: the replay-diff request (two `ReplayRunReport`s) and its answer
//! (`ReplayDiffResult`), the counterfactual request (a capture and a scenario) and its answer
//! (`CounterfactualResult`), the run and record summaries both carry, and the shadow-session
//! request and answer.

use kyro_core::diagnosis::DiagnosisKind;
use kyro_core::replay::{Intervention, StepStatus, StepType};
use kyro_core::{FreshnessMode, MutationOutcome};
use serde::{Deserialize, Serialize};

use super::capture::{CaptureExport, ReplayPrimer, ReplayRecordDto};
use super::strict::{object, objects, present, tagged_each};

/// The contract's `ReplayRunReport`: one run of a capture's steps, as a client sends it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunReport {
    pub(crate) generated_at: String,
    pub(crate) total_steps: u64,
    pub(crate) retrieve_steps: u64,
    pub(crate) complete_count: u64,
    pub(crate) degraded_count: u64,
    pub(crate) stale_blocked_count: u64,
    pub(crate) total_latency_ms: f64,
    #[serde(deserialize_with = "objects")]
    pub(crate) records: Vec<ReplayRecordDto>,
}

/// `POST /v1/replay/diff`: the SDK's `ReplayDiffRequest`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DiffRequest {
    #[serde(deserialize_with = "object")]
    pub(crate) baseline: RunReport,
    #[serde(deserialize_with = "object")]
    pub(crate) candidate: RunReport,
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

/// A counterfactual scenario: the SDK's `CounterfactualReplayScenario`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Scenario {
    pub(crate) name: String,
    #[serde(deserialize_with = "tagged_each")]
    pub(crate) interventions: Vec<InterventionDto>,
}

/// `POST /v1/replay/counterfactual`: the SDK's `CounterfactualReplayRequest`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CounterfactualRequest {
    #[serde(deserialize_with = "object")]
    pub(crate) capture: CaptureExport,
    #[serde(deserialize_with = "object")]
    pub(crate) scenario: Scenario,
}

/// The contract's `PartnerReplayRecordSummary`: one step of a run, without its label, items or
/// warning texts (labels name tenants; items and warnings may quote documents).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RecordSummary {
    pub(crate) step_key: String,
    pub(crate) step_index: u64,
    pub(crate) step_type: StepType,
    pub(crate) status: StepStatus,
    pub(crate) generation: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cache_hit: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) requested_freshness_mode: Option<FreshnessMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) served_freshness_mode: Option<FreshnessMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) diagnosis_kind: Option<DiagnosisKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) mutation_outcome: Option<MutationOutcome>,
    pub(crate) item_count: usize,
    pub(crate) warning_count: usize,
    pub(crate) watermark_count: usize,
    pub(crate) diagnostic_note_count: usize,
}

/// The contract's `PartnerReplayRunSummary`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RunSummary {
    pub(crate) generated_at: String,
    pub(crate) total_steps: usize,
    pub(crate) retrieve_steps: usize,
    pub(crate) complete_count: usize,
    pub(crate) degraded_count: usize,
    pub(crate) stale_blocked_count: usize,
    pub(crate) total_latency_ms: f64,
    pub(crate) records: Vec<RecordSummary>,
    pub(crate) redactions: Vec<String>,
}

/// The contract's `PartnerReplayStepDiffSummary`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct StepDiffSummary {
    pub(crate) step_key: String,
    pub(crate) step_index: u64,
    pub(crate) step_type: StepType,
    pub(crate) changed_fields: Vec<&'static str>,
    pub(crate) baseline: RecordSummary,
    pub(crate) candidate: RecordSummary,
}

/// The contract's `ReplayDiffResult`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ReplayDiffResult {
    pub(crate) compared_steps: usize,
    pub(crate) changed_steps: usize,
    pub(crate) cache_hit_gains: usize,
    pub(crate) completion_gains: usize,
    pub(crate) diagnosis_changes: usize,
    pub(crate) latency_delta_ms: f64,
    pub(crate) only_in_baseline_count: usize,
    pub(crate) only_in_candidate_count: usize,
    pub(crate) duplicate_key_count: usize,
    pub(crate) validation_warning_count: usize,
    pub(crate) diffs: Vec<StepDiffSummary>,
    pub(crate) redactions: Vec<String>,
}

/// The contract's `CounterfactualResult`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct CounterfactualResult {
    pub(crate) generated_at: String,
    pub(crate) scenario_key: String,
    pub(crate) intervention_count: usize,
    pub(crate) transformed_steps: usize,
    pub(crate) baseline_run_summary: RunSummary,
    pub(crate) counterfactual_run_summary: RunSummary,
    pub(crate) replay_diff_summary: ReplayDiffResult,
    pub(crate) stale_block_delta: i64,
    pub(crate) degraded_delta: i64,
    pub(crate) completion_delta: i64,
    pub(crate) redactions: Vec<String>,
}

/// A captured step the candidate runtime refused to serve (ours, `kyro replay`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct RefusedStep {
    pub(crate) step_key: String,
    /// The runtime's public-safe message.
    pub(crate) error: String,
}

/// What `kyro replay` prints (ours): whether the candidate answered every captured step alike,
/// the diff of the capture's records against the candidate's, and the steps it refused.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ReplayGateReport {
    pub(crate) identical: bool,
    pub(crate) diff: ReplayDiffResult,
    pub(crate) refused_steps: Vec<RefusedStep>,
}

/// `POST /v1/replay/shadow-sessions`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShadowSessionRequest {
    pub(crate) schema_version: u32,
    #[serde(deserialize_with = "object")]
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
