//! The contract's `ContextTrace`: the durable record of one retrieve, as stored and as served
//! by `GET /v1/traces/{trace_id}`.

use kyro_core::FreshnessMode;
use kyro_core::planner::{DiagnosticCode, ExecutionPath, PacketStatus, Severity};
use serde::{Deserialize, Serialize};

use super::packet::{FreshnessScopeDto, WatermarkDto};
use super::request::ScopeDto;

/// One stage of a retrieve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StageDto {
    /// `ledger_check`, `reuse_lookup`, `backend_fetch`, `stale_prune`, `trace_persist`.
    pub(crate) stage: String,
    pub(crate) duration_ms: f64,
    pub(crate) hit: bool,
    pub(crate) items_produced: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) detail: Option<String>,
}

/// An item pruned as stale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StalePrunedEntry {
    pub(crate) doc_id: String,
    pub(crate) stale_at_generation: u64,
    pub(crate) required_generation: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
}

/// The contract's `TraceDiagnosticSeverity`: `info` or `warning`. The planner's `error` (an
/// answer that could not be given, such as a blocked strict retrieve) is a `warning` on the
/// wire; traces stored before this mapping still read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum NoteSeverity {
    Info,
    #[serde(alias = "error")]
    Warning,
}

impl From<Severity> for NoteSeverity {
    fn from(severity: Severity) -> Self {
        match severity {
            Severity::Info => Self::Info,
            Severity::Warning | Severity::Error => Self::Warning,
        }
    }
}

/// A diagnostic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DiagnosticNoteDto {
    pub(crate) code: DiagnosticCode,
    pub(crate) severity: NoteSeverity,
    pub(crate) message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scope: Option<FreshnessScopeDto>,
}

/// The trace's scope: the request scope plus the runtime-derived filter hash and fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TraceScope {
    #[serde(flatten)]
    pub(crate) scope: ScopeDto,
    /// A compact hash of the filter (0 when the request has none).
    pub(crate) metadata_filter_hash: u64,
    /// The filter's full fingerprint.
    pub(crate) metadata_filter_fingerprint: String,
}

/// The contract's `ContextTrace`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ContextTrace {
    pub(crate) trace_id: String,
    pub(crate) timestamp: String,
    pub(crate) scope: TraceScope,
    /// Decimal u64 hash of the query embedding.
    pub(crate) query_hash: String,
    pub(crate) top_k_requested: u32,
    pub(crate) freshness_mode: FreshnessMode,
    pub(crate) served_freshness_mode: FreshnessMode,
    pub(crate) execution_path: ExecutionPath,
    pub(crate) stages: Vec<StageDto>,
    pub(crate) freshness_generation: u64,
    pub(crate) items_returned: usize,
    pub(crate) items_omitted: usize,
    pub(crate) status: PacketStatus,
    pub(crate) total_latency_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) freshness_watermarks: Option<Vec<WatermarkDto>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) stale_pruned: Vec<StalePrunedEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) diagnostic_notes: Vec<DiagnosticNoteDto>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) degradation_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) connector_used: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) connector_latency_ms: Option<f64>,
}
