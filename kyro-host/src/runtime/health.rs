//! Readiness and health: the contract's `ContextHealth` summarising every store, KyroDB's own
//! per-store document, and the readiness the unauthenticated `/readyz` answers with.

use std::sync::Arc;

use kyro_connector_sdk::{Connector, Operation, WatermarkKind};
use serde_json::{Map, Value, json};

use super::Runtime;
use super::evidence::Evidence;
use crate::stores::RegisteredStore;
use crate::wire::health::{
    CertificationSummary, ContextHealth, HealthStatus, Retentions, RuntimeHealth,
    StoreCertification, StoreHealth,
};

/// What a store's connector reported, or `unavailable` when it could not be asked.
async fn connector_health(store: &Arc<RegisteredStore>) -> String {
    if store.connector.quarantine_reason().is_some() {
        return "quarantined".to_owned();
    }
    let connector = Arc::clone(&store.connector);
    let health = tokio::task::spawn_blocking(move || connector.health()).await;
    match health {
        Ok(Ok(health)) => health.status.as_str().to_owned(),
        _ => "unhealthy".to_owned(),
    }
}

fn worst(healths: &[String]) -> String {
    for candidate in ["quarantined", "unhealthy", "degraded"] {
        if healths.iter().any(|health| health == candidate) {
            return candidate.to_owned();
        }
    }
    if healths.is_empty() { "unavailable".to_owned() } else { "healthy".to_owned() }
}

fn hours(duration: std::time::Duration) -> u64 {
    duration.as_secs() / 3600
}

/// A retention as health and reports show it: whole hours, `72h`.
pub(crate) fn retention_text(duration: std::time::Duration) -> String {
    format!("{}h", hours(duration))
}

impl Runtime {
    /// Whether the host is ready: the ledger answers and every configured store serves.
    pub(crate) async fn is_ready(&self) -> bool {
        self.ledger_healthy().await
            && self.refused.is_empty()
            && self.stores.iter().all(|store| store.connector.quarantine_reason().is_none())
    }

    async fn ledger_healthy(&self) -> bool {
        self.live.state.ping().await.is_ok() && !self.live.is_unhealthy(Evidence::PlannerState)
    }

    /// The contract's `ContextHealth`, and whether it is unhealthy (served with 503).
    pub(crate) async fn context_health(&self) -> (ContextHealth, bool) {
        let live = &self.live;
        let generation = live.state.current_generation().await.ok();
        if generation.is_none() {
            live.mark(&[Evidence::PlannerState], false);
        }
        let ledger_ok = generation.is_some() && !live.is_unhealthy(Evidence::PlannerState);
        let mut healths = Vec::with_capacity(self.stores.len());
        for store in &self.stores {
            healths.push(connector_health(store).await);
        }
        let connector_health = worst(&healths);
        let evidence_failures = live.failures();
        let all_serving = self.refused.is_empty() && connector_health == "healthy";
        let status = if !ledger_ok || self.stores.is_empty() {
            HealthStatus::Unhealthy
        } else if all_serving && evidence_failures.is_empty() {
            HealthStatus::Healthy
        } else {
            HealthStatus::Degraded
        };
        let healthy = |kind: Evidence| generation.is_some() && !live.is_unhealthy(kind);
        let ids: Vec<&str> = self.stores.iter().map(|store| store.config.id.as_str()).collect();
        let config = &self.config;
        let health = ContextHealth {
            status,
            connector: ids.join(","),
            connector_health,
            freshness_generation: generation.unwrap_or(0),
            trace_retention: Some(retention_text(config.trace_retention)),
            feedback_retention: Some(retention_text(config.feedback_retention)),
            capture_retention: Some(retention_text(config.capture_retention)),
            trace_evidence_healthy: healthy(Evidence::Trace),
            feedback_evidence_healthy: healthy(Evidence::Feedback),
            capture_evidence_healthy: healthy(Evidence::Capture),
            planner_state_healthy: ledger_ok,
            connector_capabilities: Some(capabilities(&self.stores)),
            connector_certification: Some(certification(&self.stores)),
            evidence_failures,
        };
        (health, status == HealthStatus::Unhealthy)
    }

    /// KyroDB's own health document: every configured store and the evidence volume.
    pub(crate) async fn runtime_health(&self) -> RuntimeHealth {
        let (context, _) = self.context_health().await;
        let mut stores = Vec::with_capacity(self.stores.len() + self.refused.len());
        for store in &self.stores {
            let report = &store.report;
            stores.push(StoreHealth {
                id: store.config.id.clone(),
                state: if store.connector.quarantine_reason().is_some() {
                    "quarantined"
                } else {
                    "serving"
                },
                ownership: store.config.ownership,
                connector_health: connector_health(store).await,
                profile: Some(report.profile.clone()),
                verdict: Some(report.verdict.as_str().to_owned()),
                suite_version: Some(report.suite_version.to_owned()),
                plugin_sha256: report.plugin.sha256.clone(),
                reason: None,
            });
        }
        for refused in &self.refused {
            let ownership = self
                .config
                .stores
                .iter()
                .find(|store| store.id == refused.id)
                .map_or(kyro_core::OwnershipMode::BestEffort, |store| store.ownership);
            stores.push(StoreHealth {
                id: refused.id.clone(),
                state: "refused",
                ownership,
                connector_health: "unavailable".to_owned(),
                profile: None,
                verdict: None,
                suite_version: None,
                plugin_sha256: None,
                reason: Some(refused.reason.clone()),
            });
        }
        let counts = self.live.state.evidence_counts().await.ok();
        let config = &self.config;
        RuntimeHealth {
            status: context.status,
            ready: self.is_ready().await,
            ledger_healthy: context.planner_state_healthy,
            freshness_generation: context.freshness_generation,
            stores,
            retentions: Retentions {
                trace_retention_hours: hours(config.trace_retention),
                feedback_retention_hours: hours(config.feedback_retention),
                capture_retention_hours: hours(config.capture_retention),
                capture_max_steps: config.capture_max_steps,
                capture_enabled: self.live.capture,
                shadow_session_ttl_secs: config.shadow_session_ttl.as_secs(),
                stored_traces: counts.map(|counts| counts.traces),
                stored_feedback: counts.map(|counts| counts.feedback),
                stored_capture_steps: counts.map(|counts| counts.capture_steps),
            },
            shadow_sessions: self.n_shadow_sessions(),
            evidence_failures: context.evidence_failures,
        }
    }
}

/// What every serving store can do: a capability holds for the runtime when every store has it.
fn capabilities(stores: &[Arc<RegisteredStore>]) -> Map<String, Value> {
    let all = |test: &dyn Fn(&RegisteredStore) -> bool| {
        !stores.is_empty() && stores.iter().all(|store| test(store))
    };
    let mut map = Map::new();
    map.insert(
        "supports_write_through".to_owned(),
        json!(all(&|store| store.allows_write_through())),
    );
    map.insert(
        "scoped_upsert".to_owned(),
        json!(all(&|store| store.manifest.supports(Operation::Upsert))),
    );
    map.insert(
        "scoped_delete".to_owned(),
        json!(all(&|store| store.manifest.supports(Operation::Delete))),
    );
    map.insert(
        "native_watermarks".to_owned(),
        json!(all(&|store| store.manifest.watermark_kind == WatermarkKind::PerScopeNative)),
    );
    map
}

/// The certification of the serving stores: the ownership when they all share one, and each
/// store's profile and verdict.
pub(crate) fn certification(stores: &[Arc<RegisteredStore>]) -> CertificationSummary {
    let ownership = stores.first().map(|store| store.config.ownership);
    let shared = stores.iter().all(|store| Some(store.config.ownership) == ownership);
    CertificationSummary {
        ownership: match ownership {
            Some(ownership) if shared => Some(ownership.as_str().to_owned()),
            Some(_) => Some("mixed".to_owned()),
            None => None,
        },
        stores: stores
            .iter()
            .map(|store| StoreCertification {
                store: store.config.id.clone(),
                ownership: store.config.ownership,
                profile: store.report.profile.clone(),
                verdict: store.report.verdict.as_str().to_owned(),
                suite_version: store.report.suite_version.to_owned(),
                plugin_sha256: store.report.plugin.sha256.clone(),
            })
            .collect(),
    }
}
