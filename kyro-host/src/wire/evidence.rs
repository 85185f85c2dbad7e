//! The evidence reports: the proof report (`ContextProofReport`), the proof bundle
//! (`ProofBundle`, schema version 4) and the root-cause report (`RootCauseReport`, schema
//! version 2), their requests, and the objects they share.
//!
//! The contract types many of these fields only as `object` or arrays of objects; the structs
//! here are what KyroDB puts inside (`docs/evidence.md`). A value the runtime cannot know is
//! `null` inside such an object, never a guess.

use kyro_core::FreshnessMode;
use kyro_core::diagnosis::{DiagnosisKind, FeedbackSignal};
use kyro_core::planner::{DiagnosticCode, ExecutionPath, PacketStatus};
use kyro_core::replay::{StepStatus, StepType};
use serde::{Deserialize, Serialize};

use super::capture::CaptureExport;
use super::health::CertificationSummary;
use super::packet::ProofStatus;
use super::replay::{ReplayDiffResult, RunReport, RunSummary};
use super::strict::{present, present_object};

/// The `?recent=N` query.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecentQuery {
    pub(crate) recent: Option<usize>,
}

/// `POST /v1/proofs/bundle`: the contract's `ProofBundleRequest`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BundleRequest {
    #[serde(default, deserialize_with = "present")]
    pub(crate) recent: Option<usize>,
    /// A capture to build the bundle on instead of the live one.
    #[serde(default, deserialize_with = "present_object")]
    pub(crate) baseline_capture: Option<CaptureExport>,
    /// A run of the same steps to compare the baseline with.
    #[serde(default, deserialize_with = "present_object")]
    pub(crate) candidate_run: Option<RunReport>,
}

/// `POST /v1/root-cause/report`: the contract's `RootCauseReportRequest`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RootCauseRequest {
    #[serde(default, deserialize_with = "present")]
    pub(crate) recent: Option<usize>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) max_incidents: Option<usize>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) trace_id: Option<String>,
    /// Whether traces that are no stale or safety incident are reported too.
    #[serde(default)]
    pub(crate) include_non_stale: bool,
}

/// One incident kind and how many traces it classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct IncidentCount {
    pub(crate) kind: DiagnosisKind,
    pub(crate) count: usize,
}

/// One feedback signal and how often it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct SignalCount {
    pub(crate) signal: FeedbackSignal,
    pub(crate) count: usize,
}

/// One proof status and how many packets it stood for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct ProofStatusCount {
    pub(crate) proof_status: ProofStatus,
    pub(crate) count: usize,
}

/// `proof_quality`: how well the considered packets were proven.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ProofQuality {
    /// `strong` (at least 95% proven), `mixed` (at least half), `weak`, or `no_traces`.
    pub(crate) grade: &'static str,
    /// Packets whose proof is `source_backed` or `runtime_generation`.
    pub(crate) proven_count: usize,
    /// `proven_count` over the traces considered; `null` without traces.
    pub(crate) proven_rate: Option<f64>,
    /// Every proof status, with how many packets it stood for.
    pub(crate) proof_status_counts: Vec<ProofStatusCount>,
    pub(crate) partial_count: usize,
    pub(crate) stale_pruned_item_count: usize,
}

/// The contract's `ContextProofReport`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ContextProofReport {
    pub(crate) generated_at: String,
    pub(crate) traces_considered: usize,
    pub(crate) feedback_entries_considered: usize,
    pub(crate) reuse_hit_rate: f64,
    pub(crate) degraded_count: usize,
    pub(crate) stale_blocked_count: usize,
    pub(crate) downgraded_count: usize,
    pub(crate) avg_latency_ms: f64,
    pub(crate) proof_quality: ProofQuality,
    pub(crate) incident_counts: Vec<IncidentCount>,
    pub(crate) feedback_signal_counts: Vec<SignalCount>,
    pub(crate) incident_trace_keys: Vec<String>,
    pub(crate) negative_feedback_trace_keys: Vec<String>,
    pub(crate) redactions: Vec<String>,
    /// Deployment-level: left out for a tenant-restricted caller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) connector_certification: Option<CertificationSummary>,
    /// `true` when deployment-level evidence was left out for a tenant-restricted caller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) deployment_evidence_redacted: Option<bool>,
}

/// How many steps of one type a capture holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct StepTypeCount {
    pub(crate) step_type: StepType,
    pub(crate) count: usize,
}

/// How many steps answered one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct StepStatusCount {
    pub(crate) status: StepStatus,
    pub(crate) count: usize,
}

/// The live capture's bounds: what a window of it can have left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct CaptureWindow {
    /// The newest steps asked for.
    pub(crate) recent: usize,
    /// Steps stored for every tenant when the report was made; `null` when unreadable, and for
    /// a tenant-restricted caller.
    pub(crate) stored_steps: Option<u64>,
    /// Whether older stored steps were left out by `recent`; `null` when unknown.
    pub(crate) cut_by_recent: Option<bool>,
    /// The most steps the capture keeps.
    pub(crate) capture_max_steps: usize,
    /// How long it keeps them (`24h`).
    pub(crate) capture_retention: String,
}

/// A capture as reports describe it: what it holds and the window it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct CaptureSummary {
    pub(crate) source: ProofBundleSource,
    /// Whether the runtime captures steps (a caller-supplied capture: `null`).
    pub(crate) capture_enabled: Option<bool>,
    pub(crate) total_steps: usize,
    pub(crate) steps_by_type: Vec<StepTypeCount>,
    pub(crate) steps_by_status: Vec<StepStatusCount>,
    pub(crate) first_captured_at: Option<String>,
    pub(crate) last_captured_at: Option<String>,
    /// The generation before the first step (the primer's).
    pub(crate) first_generation: Option<u64>,
    /// The generation of the last step.
    pub(crate) last_generation: Option<u64>,
    /// The live capture's bounds; `null` for a caller-supplied capture.
    pub(crate) window: Option<CaptureWindow>,
}

/// The contract's `ProofBundleSource`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ProofBundleSource {
    LiveCaptureExport,
    LiveShadowRun,
    CallerSupplied,
}

/// How many captured retrieves have their trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct TraceCoverage {
    pub(crate) captured_retrieves: usize,
    pub(crate) traces_found: usize,
    /// Retrieves whose trace is not stored (retention, or a capture from elsewhere).
    pub(crate) traces_missing: usize,
}

/// `evidence_quality`: how complete the evidence behind a report is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct EvidenceQuality {
    pub(crate) trace_coverage: TraceCoverage,
    /// Stored traces that could not be read back.
    pub(crate) unreadable_traces: usize,
    /// Evidence kinds whose last write failed (`trace`, `feedback`, `capture`, `planner_state`).
    pub(crate) evidence_failures: Vec<String>,
    pub(crate) capture_enabled: bool,
    pub(crate) trace_retention: String,
    pub(crate) feedback_retention: String,
    pub(crate) capture_retention: String,
}

/// `baseline_metrics` and `candidate_metrics`: what a run's retrieves add up to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RunMetrics {
    pub(crate) retrieve_steps: usize,
    /// Retrieves served from reuse over all retrieves; `null` without retrieves.
    pub(crate) reuse_hit_rate: Option<f64>,
    pub(crate) complete_count: usize,
    pub(crate) partial_count: usize,
    pub(crate) degraded_count: usize,
    pub(crate) stale_blocked_count: usize,
    pub(crate) downgraded_count: usize,
    pub(crate) stale_pruned_item_count: usize,
    /// The run's latency over its retrieves; `null` without retrieves.
    pub(crate) avg_latency_ms: Option<f64>,
}

/// One incident, as the bundle shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct IncidentExample {
    pub(crate) trace_key: String,
    pub(crate) kind: DiagnosisKind,
    pub(crate) status: PacketStatus,
    pub(crate) requested_freshness_mode: FreshnessMode,
    pub(crate) served_freshness_mode: FreshnessMode,
    pub(crate) timestamp: String,
    pub(crate) stale_pruned_count: usize,
    pub(crate) feedback_signals: Vec<FeedbackSignal>,
}

/// An incident's diagnosis: what to look at and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct DebugExample {
    pub(crate) trace_key: String,
    pub(crate) kind: DiagnosisKind,
    pub(crate) summary: String,
    pub(crate) recommended_actions: Vec<String>,
    pub(crate) evidence: Vec<String>,
}

/// A captured incident and the change after which the same scope was served complete again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ResolutionExample {
    pub(crate) incident_step_key: String,
    pub(crate) incident_status: StepStatus,
    pub(crate) change_step_key: String,
    pub(crate) change_generation: u64,
    pub(crate) resolved_step_key: String,
    pub(crate) resolved_generation: u64,
}

/// The contract's `ProofBundle` (schema version 4).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ProofBundle {
    pub(crate) schema_version: u32,
    pub(crate) generated_at: String,
    pub(crate) baseline_capture_source: ProofBundleSource,
    pub(crate) baseline_capture_summary: CaptureSummary,
    pub(crate) baseline_run_summary: RunSummary,
    pub(crate) baseline_metrics: RunMetrics,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) candidate_run_source: Option<ProofBundleSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) candidate_run_summary: Option<RunSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) candidate_metrics: Option<RunMetrics>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) replay_diff_summary: Option<ReplayDiffResult>,
    pub(crate) stale_prevented_count: usize,
    pub(crate) missing_trace_evidence_count: usize,
    pub(crate) evidence_quality: EvidenceQuality,
    pub(crate) feedback_entries_considered: usize,
    pub(crate) feedback_signal_counts: Vec<SignalCount>,
    pub(crate) incident_examples: Vec<IncidentExample>,
    pub(crate) debug_examples: Vec<DebugExample>,
    pub(crate) resolution_examples: Vec<ResolutionExample>,
    pub(crate) evidence_warnings: Vec<String>,
    pub(crate) trust_summary: Vec<String>,
}

/// Incidents grouped by kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct RootCause {
    pub(crate) kind: DiagnosisKind,
    /// `stale`, `safety` or `other`.
    pub(crate) category: &'static str,
    pub(crate) count: usize,
    pub(crate) summary: String,
    pub(crate) recommended_actions: Vec<String>,
    /// The first ten incidents' trace keys.
    pub(crate) trace_keys: Vec<String>,
}

/// A captured change before an incident, of the incident's tenant or of every tenant (no
/// request; the capture a report reads holds only steps the caller may see).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct PrecedingChange {
    pub(crate) sequence: i64,
    pub(crate) step_type: StepType,
    pub(crate) status: StepStatus,
    pub(crate) deduplicated: bool,
    pub(crate) generation: u64,
    pub(crate) captured_at: String,
    pub(crate) label: String,
}

/// One incident of the root-cause report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Incident {
    pub(crate) trace_key: String,
    pub(crate) tenant: String,
    pub(crate) timestamp: String,
    pub(crate) status: PacketStatus,
    pub(crate) freshness_mode: FreshnessMode,
    pub(crate) served_freshness_mode: FreshnessMode,
    pub(crate) freshness_generation: u64,
    pub(crate) kind: DiagnosisKind,
    pub(crate) category: &'static str,
    pub(crate) summary: String,
    pub(crate) recommended_actions: Vec<String>,
    pub(crate) evidence: Vec<String>,
    pub(crate) feedback_signals: Vec<FeedbackSignal>,
    pub(crate) preceding_changes: Vec<PrecedingChange>,
}

/// The contract's `RootCauseReport` (schema version 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct RootCauseReport {
    pub(crate) schema_version: u32,
    pub(crate) generated_at: String,
    pub(crate) capture_summary: CaptureSummary,
    pub(crate) traces_considered: usize,
    pub(crate) stale_incident_count: usize,
    pub(crate) safety_incident_count: usize,
    pub(crate) missing_trace_evidence_count: usize,
    pub(crate) root_causes: Vec<RootCause>,
    pub(crate) incidents: Vec<Incident>,
    pub(crate) evidence_quality: EvidenceQuality,
    pub(crate) redactions: Vec<String>,
    pub(crate) warnings: Vec<String>,
}

/// One trace as KyroDB's own evidence listing shows it (no content, no query).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct TraceLine {
    pub(crate) trace_key: String,
    pub(crate) tenant: String,
    pub(crate) timestamp: String,
    pub(crate) status: PacketStatus,
    pub(crate) execution_path: ExecutionPath,
    pub(crate) freshness_mode: FreshnessMode,
    pub(crate) served_freshness_mode: FreshnessMode,
    pub(crate) freshness_generation: u64,
    pub(crate) items_returned: usize,
    pub(crate) items_omitted: usize,
    pub(crate) stale_pruned_count: usize,
    pub(crate) diagnostic_codes: Vec<DiagnosticCode>,
    pub(crate) connector_used: Option<String>,
    pub(crate) total_latency_ms: f64,
    pub(crate) proof_status: ProofStatus,
    pub(crate) diagnosis: DiagnosisKind,
}

/// One feedback entry as KyroDB's own evidence listing shows it (the comment only by length).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct FeedbackLine {
    pub(crate) trace_key: String,
    pub(crate) signal: FeedbackSignal,
    pub(crate) received_at: String,
    pub(crate) item_count: usize,
    pub(crate) comment_bytes: usize,
}

/// `GET /v1/runtime/evidence?recent=N` (ours, observability-admin plane): the recent traces and
/// the feedback on them, line by line, redacted for the caller; what proof reports count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct EvidenceListing {
    pub(crate) generated_at: String,
    pub(crate) traces: Vec<TraceLine>,
    pub(crate) feedback: Vec<FeedbackLine>,
    pub(crate) redactions: Vec<String>,
}
