//! Health and readiness: the contract's `ContextHealth`, the process endpoints' answers, and
//! KyroDB's own per-store health document.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `healthy`, `degraded` or `unhealthy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum HealthStatus {
    Healthy,
    Degraded,
    Unhealthy,
}

/// The contract's `ContextHealth` (`GET /v1/health/context`): the runtime-level fields
/// summarise every configured store; per-store detail is on KyroDB's own route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContextHealth {
    pub(crate) status: HealthStatus,
    /// The configured stores' ids, comma-separated.
    pub(crate) connector: String,
    /// The worst health among the stores (`healthy`, `degraded`, `unhealthy`, `unavailable`).
    pub(crate) connector_health: String,
    pub(crate) freshness_generation: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) trace_retention: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) feedback_retention: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) capture_retention: Option<String>,
    pub(crate) trace_evidence_healthy: bool,
    pub(crate) feedback_evidence_healthy: bool,
    pub(crate) capture_evidence_healthy: bool,
    pub(crate) planner_state_healthy: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) connector_capabilities: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) connector_certification: Option<CertificationSummary>,
    #[serde(default)]
    pub(crate) evidence_failures: Vec<String>,
}

/// The certification the serving stores passed: `connector_certification` in health and proof
/// reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CertificationSummary {
    /// The serving stores' ownership mode when they share one, `mixed` when they do not,
    /// `null` without a serving store.
    pub(crate) ownership: Option<String>,
    pub(crate) stores: Vec<StoreCertification>,
}

/// One serving store's certification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoreCertification {
    pub(crate) store: String,
    pub(crate) ownership: kyro_core::OwnershipMode,
    pub(crate) profile: String,
    pub(crate) verdict: String,
    pub(crate) suite_version: String,
    pub(crate) plugin_sha256: Option<String>,
}

/// `GET /readyz`: ready or not, nothing more (the route is unauthenticated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Readiness {
    pub(crate) ready: bool,
}

/// `GET /healthz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Liveness {
    pub(crate) status: &'static str,
}

/// KyroDB's own health document (`GET /v1/runtime/health`, observability-admin plane): every
/// configured store, the retentions and the evidence volume. The contract's `ContextHealth`
/// forbids these fields, so they live on a route of their own.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RuntimeHealth {
    pub(crate) status: HealthStatus,
    pub(crate) ready: bool,
    pub(crate) ledger_healthy: bool,
    pub(crate) freshness_generation: u64,
    pub(crate) stores: Vec<StoreHealth>,
    pub(crate) retentions: Retentions,
    pub(crate) shadow_sessions: usize,
    pub(crate) evidence_failures: Vec<String>,
}

/// One configured store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct StoreHealth {
    pub(crate) id: String,
    /// `serving`, `refused` or `quarantined`.
    pub(crate) state: &'static str,
    pub(crate) ownership: kyro_core::OwnershipMode,
    /// What its connector reported (`healthy`, `degraded`, `unhealthy`), or `unavailable`.
    pub(crate) connector_health: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) profile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) verdict: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) suite_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) plugin_sha256: Option<String>,
    /// Why it does not serve, as codes and check ids (never a store's or plugin's own text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
}

/// The configured retentions and how much evidence is stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Retentions {
    pub(crate) trace_retention_hours: u64,
    pub(crate) feedback_retention_hours: u64,
    pub(crate) capture_retention_hours: u64,
    pub(crate) capture_max_steps: usize,
    pub(crate) capture_enabled: bool,
    pub(crate) shadow_session_ttl_secs: u64,
    pub(crate) stored_traces: Option<u64>,
    pub(crate) stored_feedback: Option<u64>,
    pub(crate) stored_capture_steps: Option<u64>,
}
