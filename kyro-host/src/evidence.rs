//! The evidence routes: proof reports and bundles, root-cause reports, replay capture export,
//! replay diff, counterfactual replay and shadow sessions (runtime contract §1 and §5).
//!
//! Reports are computed from stored traces, feedback and capture, and redacted: they never carry
//! content, embeddings, tokens, feedback comments or request bodies, and trace ids of tenants the
//! caller may not see are replaced by keys. Every report lists what it redacted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kyro_core::diagnosis::{FeedbackSignal, TraceFacts, diagnose};
use kyro_core::planner::Fingerprinter;
use kyro_core::replay::{
    Intervention, PrimerState, ReplayRecord, SimStep, StepPlan, diff, intervene, simulate,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::{ApiError, parse_body, parse_rfc3339_ms, rfc3339_ms};
use crate::runtime::{CaptureBody, Evidence, Runtime, Session, now_ms};
use crate::server::{Caller, Plane, authenticate, session_of};
use kyro_state::{
    CapturedStep, EventTenant, FeedbackRow, Primer, ProcessedEvent, ScopeGeneration, TraceRow,
};

/// The most steps, primer entries, interventions or incidents one request may carry.
const MAX_ENTRIES: usize = 2000;
/// The most recent traces or steps one report reads.
const MAX_RECENT: usize = 1000;

type Shared = State<Arc<Runtime>>;

fn unhealthy(session: &Session, evidence: Evidence, err: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(error = %err, "evidence read failed");
    session.mark(&[evidence], false);
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        evidence.unhealthy_code(),
        "stored evidence cannot be read right now",
    )
}

fn recent_param(recent: Option<usize>, default: usize) -> Result<usize, ApiError> {
    let recent = recent.unwrap_or(default);
    if !(1..=MAX_RECENT).contains(&recent) {
        return Err(ApiError::validation(format!("recent must be 1..{MAX_RECENT}, got {recent}")));
    }
    Ok(recent)
}

fn check_count(field: &str, count: usize) -> Result<(), ApiError> {
    if count > MAX_ENTRIES {
        return Err(ApiError::validation(format!(
            "{field} has {count} entries, allowed is at most {MAX_ENTRIES}"
        )));
    }
    Ok(())
}

/// What the reports read of one stored trace.
struct TraceView {
    trace_id: String,
    tenant_id: String,
    created_at_ms: i64,
    body: Value,
    facts: TraceFacts,
}

impl TraceView {
    fn new(runtime: &Runtime, row: TraceRow) -> Self {
        let body: Value = serde_json::from_str(&row.body).unwrap_or(Value::Null);
        let facts = trace_facts(runtime, &body);
        Self {
            trace_id: row.trace_id,
            tenant_id: row.tenant_id,
            created_at_ms: row.created_at_ms,
            body,
            facts,
        }
    }

    fn is_incident(&self, signals: &[FeedbackSignal]) -> bool {
        self.facts.status != "complete"
            || self.facts.n_stale_pruned > 0
            || self.facts.freshness_mode != self.facts.served_freshness_mode
            || signals
                .iter()
                .any(|signal| matches!(signal, FeedbackSignal::Stale | FeedbackSignal::WrongScope))
    }
}

/// The classifier's facts from a stored trace.
pub fn trace_facts(runtime: &Runtime, trace: &Value) -> TraceFacts {
    let text = |field: &str| trace[field].as_str().unwrap_or_default().to_owned();
    let connector = text("connector_used");
    TraceFacts {
        freshness_mode: text("freshness_mode"),
        served_freshness_mode: text("served_freshness_mode"),
        status: text("status"),
        execution_path: text("execution_path"),
        diagnostic_codes: trace["diagnostic_notes"]
            .as_array()
            .map(|notes| {
                notes.iter().filter_map(|note| note["code"].as_str().map(str::to_owned)).collect()
            })
            .unwrap_or_default(),
        n_stale_pruned: trace["stale_pruned"].as_array().map_or(0, Vec::len),
        n_items: trace["items_returned"]
            .as_u64()
            .map_or(0, |count| usize::try_from(count).unwrap_or(usize::MAX)),
        degradation_reason: trace["degradation_reason"].as_str().map(str::to_owned),
        ownership: runtime
            .config
            .stores
            .iter()
            .find(|store| store.id == connector)
            .map(|store| store.ownership.as_str().to_owned()),
    }
}

/// Names traces for a report: the raw id for tenants the caller may see, a stable key otherwise.
struct Redactor<'a> {
    caller: &'a Caller,
    redacted_traces: BTreeSet<String>,
    redacted_tenants: BTreeSet<String>,
}

impl<'a> Redactor<'a> {
    fn new(caller: &'a Caller) -> Self {
        Self { caller, redacted_traces: BTreeSet::new(), redacted_tenants: BTreeSet::new() }
    }

    fn visible(&self, tenant_id: &str) -> bool {
        self.caller.allow(tenant_id).is_ok()
    }

    fn trace_key(&mut self, tenant_id: &str, trace_id: &str) -> String {
        if self.visible(tenant_id) {
            return trace_id.to_owned();
        }
        let key = format!("redacted:{}", Fingerprinter::default().field(trace_id).finish());
        self.redacted_traces.insert(key.clone());
        key
    }

    fn tenant(&mut self, tenant_id: &str) -> String {
        if self.visible(tenant_id) {
            return tenant_id.to_owned();
        }
        let key = format!("redacted:{}", Fingerprinter::default().field(tenant_id).finish());
        self.redacted_tenants.insert(key.clone());
        key
    }

    fn redactions(&self) -> Vec<String> {
        let mut redactions = vec![
            "document content, embeddings and request bodies are never included".to_owned(),
            "bearer tokens, secrets and connection strings are never included".to_owned(),
            "feedback comments are reduced to their length".to_owned(),
        ];
        if !self.redacted_traces.is_empty() {
            redactions.push(format!(
                "{} trace ids of tenants this token may not see are replaced by keys",
                self.redacted_traces.len()
            ));
        }
        if !self.redacted_tenants.is_empty() {
            redactions.push(format!(
                "{} tenant ids this token may not see are replaced by keys",
                self.redacted_tenants.len()
            ));
        }
        redactions
    }
}

/// Reads the `recent` newest traces and the feedback given on them.
async fn load_traces(
    runtime: &Runtime,
    session: &Session,
    recent: usize,
) -> Result<(Vec<TraceView>, BTreeMap<String, Vec<FeedbackRow>>), ApiError> {
    session.require_healthy(&[Evidence::Trace, Evidence::Feedback])?;
    let rows = session
        .state
        .recent_traces(recent)
        .await
        .map_err(|err| unhealthy(session, Evidence::Trace, &err))?;
    let traces: Vec<TraceView> = rows.into_iter().map(|row| TraceView::new(runtime, row)).collect();
    let oldest = traces.iter().map(|trace| trace.created_at_ms).min().unwrap_or(0);
    let known: BTreeSet<&str> = traces.iter().map(|trace| trace.trace_id.as_str()).collect();
    let mut feedback: BTreeMap<String, Vec<FeedbackRow>> = BTreeMap::new();
    for row in session
        .state
        .feedback_since(oldest, MAX_RECENT * 8)
        .await
        .map_err(|err| unhealthy(session, Evidence::Feedback, &err))?
    {
        if known.contains(row.trace_id.as_str()) {
            feedback.entry(row.trace_id.clone()).or_default().push(row);
        }
    }
    Ok((traces, feedback))
}

fn signals_of(
    feedback: &BTreeMap<String, Vec<FeedbackRow>>,
    trace_id: &str,
) -> Vec<FeedbackSignal> {
    feedback
        .get(trace_id)
        .map(|rows| rows.iter().filter_map(|row| FeedbackSignal::parse(&row.signal)).collect())
        .unwrap_or_default()
}

fn certification(runtime: &Runtime) -> Value {
    json!(
        runtime
            .stores
            .iter()
            .map(|store| json!({
                "store": store.config.id,
                "ownership": store.config.ownership.as_str(),
                "profile": store.report.profile,
                "verdict": store.report.verdict.as_str(),
                "suite_version": store.report.suite_version,
            }))
            .collect::<Vec<_>>()
    )
}

/// The contract's `ContextProofReport` over the given traces.
fn proof_report(
    runtime: &Runtime,
    traces: &[TraceView],
    feedback: &BTreeMap<String, Vec<FeedbackRow>>,
    redactor: &mut Redactor<'_>,
) -> Value {
    let n = traces.len();
    let count =
        |predicate: &dyn Fn(&TraceView) -> bool| traces.iter().filter(|t| predicate(t)).count();
    let reuse_hits = count(&|trace| trace.facts.execution_path == "context_reuse_hit");
    let degraded = count(&|trace| trace.facts.status == "degraded");
    let stale_blocked = count(&|trace| trace.facts.status == "stale_blocked");
    let partial = count(&|trace| trace.facts.status == "partial");
    let downgraded =
        count(&|trace| trace.facts.freshness_mode != trace.facts.served_freshness_mode);
    let stale_pruned_items: usize = traces.iter().map(|trace| trace.facts.n_stale_pruned).sum();
    let latency: f64 =
        traces.iter().filter_map(|trace| trace.body["total_latency_ms"].as_f64()).sum();
    let proven = count(&|trace| {
        trace.facts.status != "stale_blocked"
            && trace.facts.ownership.as_deref().is_some_and(|ownership| ownership != "best_effort")
            && !trace.facts.diagnostic_codes.iter().any(|code| code == "stale_reuse_served")
    });
    let rate = |part: usize| if n == 0 { 0.0 } else { part as f64 / n as f64 };
    let proof_quality = match n {
        0 => "no_traces",
        _ if rate(proven) >= 0.95 => "strong",
        _ if rate(proven) >= 0.5 => "mixed",
        _ => "weak",
    };
    let mut signal_counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut n_feedback = 0;
    for rows in feedback.values() {
        for row in rows {
            n_feedback += 1;
            *signal_counts
                .entry(FeedbackSignal::parse(&row.signal).map_or("unknown", FeedbackSignal::as_str))
                .or_default() += 1;
        }
    }
    let mut incidents = Vec::new();
    for trace in traces {
        let signals = signals_of(feedback, &trace.trace_id);
        if trace.is_incident(&signals) {
            let diagnosis = diagnose(&trace.facts, &signals);
            incidents.push(json!({
                "trace_key": redactor.trace_key(&trace.tenant_id, &trace.trace_id),
                "timestamp": rfc3339_ms(trace.created_at_ms),
                "status": trace.facts.status,
                "kind": diagnosis.kind,
            }));
        }
    }
    let redacted_trace_keys: Vec<String> = redactor.redacted_traces.iter().cloned().collect();
    json!({
        "generated_at": rfc3339_ms(now_ms()),
        "traces_considered": n,
        "feedback_entries_considered": n_feedback,
        "reuse_hit_rate": rate(reuse_hits),
        "degraded_count": degraded,
        "stale_blocked_count": stale_blocked,
        "downgraded_count": downgraded,
        "partial_count": partial,
        "stale_pruned_item_count": stale_pruned_items,
        "avg_latency_ms": if n == 0 { 0.0 } else { latency / n as f64 },
        "proof_quality": proof_quality,
        "proven_rate": rate(proven),
        "incident_count": incidents.len(),
        "incidents": incidents,
        "feedback_signal_counts": signal_counts,
        "redacted_trace_keys": redacted_trace_keys,
        "redactions": redactor.redactions(),
        "connector_certification": certification(runtime),
    })
}

/// The `?recent=N` query.
#[derive(Debug, Deserialize)]
pub struct RecentQuery {
    /// How many of the newest entries to read.
    pub recent: Option<usize>,
}

fn recent_query(
    query: Result<Query<RecentQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Option<usize>, ApiError> {
    query
        .map(|Query(query)| query.recent)
        .map_err(|_| ApiError::validation(format!("recent must be an integer 1..{MAX_RECENT}")))
}

/// `GET /v1/proofs/context?recent=N`.
pub async fn proof_context(
    State(runtime): Shared,
    headers: HeaderMap,
    query: Result<Query<RecentQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let caller = authenticate(&runtime, &headers, Plane::Observability)?;
    let recent = recent_param(recent_query(query)?, 100)?;
    let session = session_of(&runtime, &headers)?;
    let (traces, feedback) = load_traces(&runtime, &session, recent).await?;
    let mut redactor = Redactor::new(&caller);
    Ok(axum::Json(proof_report(&runtime, &traces, &feedback, &mut redactor)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleRequest {
    #[serde(default)]
    recent: Option<usize>,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    include_capture: Option<bool>,
}

/// `POST /v1/proofs/bundle`: the proof report with its redacted traces, feedback and capture
/// summary, in one shareable document (schema version 4).
pub async fn proof_bundle(
    State(runtime): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = authenticate(&runtime, &headers, Plane::Admin)?;
    let request: BundleRequest = parse_body(&body)?;
    let recent = recent_param(request.recent, 100)?;
    if let Some(tenant_id) = &request.tenant_id {
        kyro_core::validate_identifier(
            "tenant_id",
            tenant_id,
            kyro_core::limits::MAX_SCOPE_FIELD_BYTES,
        )?;
        caller.allow(tenant_id)?;
    }
    let session = session_of(&runtime, &headers)?;
    let (mut traces, feedback) = load_traces(&runtime, &session, recent).await?;
    if let Some(tenant_id) = &request.tenant_id {
        traces.retain(|trace| &trace.tenant_id == tenant_id);
    }
    let mut redactor = Redactor::new(&caller);
    let report = proof_report(&runtime, &traces, &feedback, &mut redactor);
    let mut trace_entries = Vec::new();
    let mut feedback_entries = Vec::new();
    for trace in &traces {
        let signals = signals_of(&feedback, &trace.trace_id);
        let key = redactor.trace_key(&trace.tenant_id, &trace.trace_id);
        let body = &trace.body;
        trace_entries.push(json!({
            "trace_key": key,
            "tenant": redactor.tenant(&trace.tenant_id),
            "timestamp": rfc3339_ms(trace.created_at_ms),
            "status": trace.facts.status,
            "execution_path": trace.facts.execution_path,
            "freshness_mode": trace.facts.freshness_mode,
            "served_freshness_mode": trace.facts.served_freshness_mode,
            "freshness_generation": body["freshness_generation"],
            "items_returned": body["items_returned"],
            "items_omitted": body["items_omitted"],
            "stale_pruned_count": trace.facts.n_stale_pruned,
            "diagnostic_codes": trace.facts.diagnostic_codes,
            "connector_used": body["connector_used"],
            "total_latency_ms": body["total_latency_ms"],
            "diagnosis": diagnose(&trace.facts, &signals).kind,
        }));
        for row in feedback.get(&trace.trace_id).into_iter().flatten() {
            feedback_entries.push(json!({
                "trace_key": key,
                "signal": row.signal,
                "received_at": rfc3339_ms(row.received_at_ms),
                "item_count": serde_json::from_str::<Vec<String>>(&row.item_ids).map_or(0, |ids| ids.len()),
                "comment_bytes": row.comment.as_ref().map_or(0, String::len),
            }));
        }
    }
    let capture = if request.include_capture.unwrap_or(true) && session.capture {
        session.require_healthy(&[Evidence::Capture])?;
        let steps = session
            .state
            .recent_capture(recent)
            .await
            .map_err(|err| unhealthy(&session, Evidence::Capture, &err))?;
        let summary: Vec<Value> = steps
            .iter()
            .filter(|step| request.tenant_id.is_none() || step.row.tenant_id == request.tenant_id)
            .map(|step| {
                let visible =
                    step.row.tenant_id.as_deref().is_none_or(|tenant| redactor.visible(tenant));
                step_summary(step, visible)
            })
            .collect();
        json!({ "steps": summary })
    } else {
        Value::Null
    };
    let bundle = json!({
        "schema_version": 4,
        "generated_at": rfc3339_ms(now_ms()),
        "report": report,
        "traces": trace_entries,
        "feedback": feedback_entries,
        "capture": capture,
        "connector_certification": certification(&runtime),
        "redactions": redactor.redactions(),
    });
    Ok(axum::Json(bundle).into_response())
}

/// A capture step as reports show it: no request, and no label unless its tenant is visible.
fn step_summary(step: &CapturedStep, visible: bool) -> Value {
    let label = serde_json::from_str::<CaptureBody>(&step.row.body)
        .map(|body| body.label)
        .unwrap_or_default();
    json!({
        "sequence": step.sequence,
        "step_type": step.row.step_type,
        "status": step.row.status.as_str(),
        "generation": step.row.generation,
        "captured_at": rfc3339_ms(step.row.captured_at_ms),
        "label": if visible { label } else { "redacted".to_owned() },
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RootCauseRequest {
    #[serde(default)]
    recent: Option<usize>,
    #[serde(default)]
    max_incidents: Option<usize>,
    #[serde(default)]
    trace_id: Option<String>,
    #[serde(default)]
    tenant_id: Option<String>,
}

/// `POST /v1/root-cause/report`: every incident among recent traces (or one named trace), its
/// diagnosis, and the captured changes that preceded it (schema version 2).
pub async fn root_cause(
    State(runtime): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = authenticate(&runtime, &headers, Plane::Admin)?;
    let request: RootCauseRequest = parse_body(&body)?;
    let recent = recent_param(request.recent, 200)?;
    let max_incidents = request.max_incidents.unwrap_or(50);
    if !(1..=MAX_ENTRIES).contains(&max_incidents) {
        return Err(ApiError::validation(format!("max_incidents must be 1..{MAX_ENTRIES}")));
    }
    if let Some(trace_id) = &request.trace_id {
        kyro_core::validate_identifier("trace_id", trace_id, 1024)?;
    }
    if let Some(tenant_id) = &request.tenant_id {
        kyro_core::validate_identifier(
            "tenant_id",
            tenant_id,
            kyro_core::limits::MAX_SCOPE_FIELD_BYTES,
        )?;
        caller.allow(tenant_id)?;
    }
    let session = session_of(&runtime, &headers)?;
    let (mut traces, feedback) = match &request.trace_id {
        Some(trace_id) => {
            session.require_healthy(&[Evidence::Trace, Evidence::Feedback])?;
            let row = session
                .state
                .get_trace(trace_id)
                .await
                .map_err(|err| unhealthy(&session, Evidence::Trace, &err))?
                .ok_or_else(|| {
                    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no trace with that id")
                })?;
            caller.allow(&row.tenant_id)?;
            let rows = session
                .state
                .feedback_for(trace_id)
                .await
                .map_err(|err| unhealthy(&session, Evidence::Feedback, &err))?;
            (vec![TraceView::new(&runtime, row)], BTreeMap::from([(trace_id.clone(), rows)]))
        }
        None => load_traces(&runtime, &session, recent).await?,
    };
    if let Some(tenant_id) = &request.tenant_id {
        traces.retain(|trace| &trace.tenant_id == tenant_id);
    }
    let changes = if session.capture {
        session.require_healthy(&[Evidence::Capture])?;
        session
            .state
            .recent_capture(MAX_RECENT)
            .await
            .map_err(|err| unhealthy(&session, Evidence::Capture, &err))?
            .into_iter()
            .filter(|step| step.row.step_type != "retrieve")
            .collect()
    } else {
        Vec::new()
    };
    let mut redactor = Redactor::new(&caller);
    let mut incidents = Vec::new();
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for trace in traces.iter().rev() {
        let signals = signals_of(&feedback, &trace.trace_id);
        if !trace.is_incident(&signals) && request.trace_id.is_none() {
            continue;
        }
        let diagnosis = diagnose(&trace.facts, &signals);
        *by_kind.entry(diagnosis.kind).or_default() += 1;
        if incidents.len() >= max_incidents {
            continue;
        }
        let preceding: Vec<Value> = changes
            .iter()
            .filter(|step| step.row.captured_at_ms <= trace.created_at_ms)
            .filter(|step| {
                step.row.tenant_id.is_none()
                    || step.row.tenant_id.as_deref() == Some(trace.tenant_id.as_str())
            })
            .rev()
            .take(5)
            .map(|step| step_summary(step, redactor.visible(&trace.tenant_id)))
            .collect();
        incidents.push(json!({
            "trace_key": redactor.trace_key(&trace.tenant_id, &trace.trace_id),
            "tenant": redactor.tenant(&trace.tenant_id),
            "timestamp": rfc3339_ms(trace.created_at_ms),
            "status": trace.facts.status,
            "freshness_mode": trace.facts.freshness_mode,
            "served_freshness_mode": trace.facts.served_freshness_mode,
            "freshness_generation": trace.body["freshness_generation"],
            "kind": diagnosis.kind,
            "summary": diagnosis.summary,
            "recommended_actions": diagnosis.recommended_actions,
            "evidence": diagnosis.evidence,
            "feedback_signals": signals.iter().map(|signal| signal.as_str()).collect::<Vec<_>>(),
            "preceding_changes": preceding,
        }));
    }
    let report = json!({
        "schema_version": 2,
        "generated_at": rfc3339_ms(now_ms()),
        "traces_considered": traces.len(),
        "incident_count": by_kind.values().sum::<usize>(),
        "incidents_by_kind": by_kind,
        "incidents": incidents,
        "redactions": redactor.redactions(),
    });
    Ok(axum::Json(report).into_response())
}

/// One entry of a replay primer's scope generations.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeGenerationDto {
    /// The scope key (`namespace:acme/support`, `tenant:acme`, `all`, ...).
    pub scope: String,
    /// Its generation.
    pub generation: u64,
    /// When its latest change was acknowledged (RFC 3339).
    pub acknowledged_at: String,
    /// What produced that change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalidation: Option<String>,
}

/// One entry of a replay primer's processed change events.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessedEventDto {
    /// The tenant whose idempotency keys it is unique among; absent for events whose scope
    /// named no tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// The event's idempotency key.
    pub source_event_id: String,
    /// The generation it was applied at.
    pub original_generation: u64,
    /// The fingerprint of its body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_fingerprint: Option<String>,
    /// The `Idempotency-Key` it came with, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// The contract's `ReplayPrimerState`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayPrimer {
    /// The runtime generation.
    pub current_generation: u64,
    /// Scope generations.
    #[serde(default)]
    pub scope_generations: Vec<ScopeGenerationDto>,
    /// Processed change events.
    #[serde(default)]
    pub processed_change_events: Vec<ProcessedEventDto>,
}

impl ReplayPrimer {
    /// Checks limits and consistency and converts to the state store's primer.
    ///
    /// # Errors
    ///
    /// Too many entries, invalid identifiers or timestamps, or a generation above the current one.
    pub fn to_state(&self) -> Result<Primer, ApiError> {
        check_count("replay_primer.scope_generations", self.scope_generations.len())?;
        check_count("replay_primer.processed_change_events", self.processed_change_events.len())?;
        let above = |generation: u64| generation > self.current_generation;
        let mut seen = BTreeSet::new();
        let mut scope_generations = Vec::with_capacity(self.scope_generations.len());
        for entry in &self.scope_generations {
            kyro_core::validate_identifier(
                "replay_primer.scope_generations[].scope",
                &entry.scope,
                1024,
            )?;
            if above(entry.generation) || !seen.insert(entry.scope.as_str()) {
                return Err(ApiError::validation(format!(
                    "scope {} is listed twice or above current_generation",
                    entry.scope
                )));
            }
            scope_generations.push(ScopeGeneration {
                key: entry.scope.clone(),
                generation: entry.generation,
                acknowledged_at_ms: parse_rfc3339_ms(&entry.acknowledged_at)?,
                trigger: entry.invalidation.clone().unwrap_or_else(|| "replay_primer".to_owned()),
            });
        }
        let mut seen = BTreeSet::new();
        let mut processed_events = Vec::with_capacity(self.processed_change_events.len());
        for event in &self.processed_change_events {
            kyro_core::validate_identifier("source_event_id", &event.source_event_id, 256)?;
            if above(event.original_generation)
                || !seen.insert((event.tenant_id.as_deref(), event.source_event_id.as_str()))
            {
                return Err(ApiError::validation(format!(
                    "change event {} is listed twice or above current_generation",
                    event.source_event_id
                )));
            }
            processed_events.push(ProcessedEvent {
                tenant: EventTenant::from(event.tenant_id.as_deref()),
                source_event_id: event.source_event_id.clone(),
                generation: event.original_generation,
                fingerprint: event.event_fingerprint.clone().unwrap_or_default(),
            });
        }
        Ok(Primer {
            current_generation: self.current_generation,
            scope_generations,
            processed_events,
        })
    }

    fn to_sim(&self) -> PrimerState {
        PrimerState {
            current_generation: self.current_generation,
            scope_generations: self
                .scope_generations
                .iter()
                .map(|entry| (entry.scope.clone(), entry.generation))
                .collect(),
            processed_change_events: self
                .processed_change_events
                .iter()
                .map(|event| event.source_event_id.clone())
                .collect(),
        }
    }
}

/// A replayable request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CapturedRequest {
    /// The route.
    pub route: String,
    /// The body, verbatim.
    pub body: Value,
    /// The `Idempotency-Key` header, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// One exported step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaptureStep {
    /// Its order among captured steps.
    pub sequence: i64,
    /// What it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_record: Option<ReplayRecord>,
    /// When it was served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured_at: Option<String>,
    /// The planner state it read before it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_step_replay_primer: Option<ReplayPrimer>,
    /// The request, to replay it (ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<CapturedRequest>,
    /// The planner's inputs, for counterfactual replay (ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<StepPlan>,
}

/// The contract's `ReplayCaptureExport` (schema version 4).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaptureExport {
    /// 4.
    pub schema_version: u32,
    /// When it was exported.
    #[serde(default)]
    pub generated_at: String,
    /// How many steps it holds.
    #[serde(default)]
    pub total_steps: usize,
    /// The steps, oldest first.
    pub steps: Vec<CaptureStep>,
    /// The planner state before the first step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_primer: Option<ReplayPrimer>,
}

impl CaptureExport {
    fn check(&self) -> Result<(), ApiError> {
        if self.schema_version != 4 {
            return Err(ApiError::validation(format!(
                "capture schema_version {} is not supported; expected 4",
                self.schema_version
            )));
        }
        check_count("steps", self.steps.len())
    }

    fn records(&self) -> Vec<ReplayRecord> {
        self.steps.iter().filter_map(|step| step.observed_record.clone()).collect()
    }

    fn sim_steps(&self) -> Result<Vec<SimStep>, ApiError> {
        self.steps
            .iter()
            .map(|step| match (&step.observed_record, &step.plan) {
                (Some(record), Some(plan)) => Ok(SimStep {
                    step_index: record.step_index,
                    label: record.label.clone(),
                    step_type: record.step_type.clone(),
                    plan: plan.clone(),
                }),
                _ => Err(ApiError::validation(format!(
                    "step {} has no observed_record or plan; counterfactual replay needs both",
                    step.sequence
                ))),
            })
            .collect()
    }
}

/// Exports the `recent` newest capture steps of a session, with the primer that precedes them.
///
/// # Errors
///
/// Capture evidence is unhealthy or unreadable.
pub async fn export_capture(session: &Session, recent: usize) -> Result<CaptureExport, ApiError> {
    // The primer comes from the ledger: a ledger whose last write failed cannot vouch for it.
    session.require_healthy(&[Evidence::Capture, Evidence::PlannerState])?;
    let stored = session
        .state
        .recent_capture(recent)
        .await
        .map_err(|err| unhealthy(session, Evidence::Capture, &err))?;
    let mut steps = Vec::with_capacity(stored.len());
    let mut primer_scopes: BTreeMap<String, ScopeGenerationDto> = BTreeMap::new();
    let mut touched = BTreeSet::new();
    for (index, step) in stored.iter().enumerate() {
        let Ok(body) = serde_json::from_str::<CaptureBody>(&step.row.body) else {
            return Err(unhealthy(
                session,
                Evidence::Capture,
                &"a stored capture step is unreadable",
            ));
        };
        let scopes: Vec<ScopeGenerationDto> = body
            .scopes_seen
            .iter()
            .map(|(scope, generation, acknowledged_at_ms)| ScopeGenerationDto {
                scope: scope.clone(),
                generation: *generation,
                acknowledged_at: rfc3339_ms(*acknowledged_at_ms),
                invalidation: None,
            })
            .collect();
        for scope in &scopes {
            if !touched.contains(&scope.scope) {
                primer_scopes.entry(scope.scope.clone()).or_insert_with(|| scope.clone());
            }
        }
        if let StepPlan::Change { scope_keys, .. } = &body.plan {
            touched.extend(scope_keys.iter().cloned());
        }
        let observed = body.observed.clone().unwrap_or_default();
        steps.push(CaptureStep {
            sequence: step.sequence,
            observed_record: Some(ReplayRecord {
                step_index: index as u64,
                label: body.label.clone(),
                step_type: step.row.step_type.clone(),
                status: step.row.status.as_str().to_owned(),
                generation: step.row.generation,
                observed,
            }),
            captured_at: Some(rfc3339_ms(step.row.captured_at_ms)),
            pre_step_replay_primer: Some(ReplayPrimer {
                current_generation: step.row.pre_generation,
                scope_generations: scopes,
                processed_change_events: Vec::new(),
            }),
            request: Some(CapturedRequest {
                route: body.route,
                body: serde_json::from_str(&step.row.request).unwrap_or(Value::Null),
                idempotency_key: body.idempotency_key,
            }),
            plan: Some(body.plan),
        });
    }
    let start_generation = match stored.first() {
        Some(step) => step.row.pre_generation,
        None => session
            .state
            .current_generation()
            .await
            .map_err(|err| unhealthy(session, Evidence::PlannerState, &err))?,
    };
    let processed = session
        .state
        .processed_events_upto(start_generation, MAX_ENTRIES)
        .await
        .map_err(|err| unhealthy(session, Evidence::PlannerState, &err))?;
    let replay_primer = ReplayPrimer {
        current_generation: start_generation,
        scope_generations: primer_scopes
            .into_values()
            .filter(|scope| scope.generation <= start_generation)
            .collect(),
        processed_change_events: processed
            .into_iter()
            .map(|event| ProcessedEventDto {
                tenant_id: match event.tenant {
                    EventTenant::Tenant(tenant_id) => Some(tenant_id),
                    EventTenant::Global => None,
                },
                source_event_id: event.source_event_id,
                original_generation: event.generation,
                event_fingerprint: Some(event.fingerprint),
                idempotency_key: None,
            })
            .collect(),
    };
    Ok(CaptureExport {
        schema_version: 4,
        generated_at: rfc3339_ms(now_ms()),
        total_steps: steps.len(),
        steps,
        replay_primer: Some(replay_primer),
    })
}

/// `GET /v1/replay/capture?recent=N`.
pub async fn replay_capture(
    State(runtime): Shared,
    headers: HeaderMap,
    query: Result<Query<RecentQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    authenticate(&runtime, &headers, Plane::Admin)?;
    let recent = recent_param(recent_query(query)?, 100)?;
    let session = session_of(&runtime, &headers)?;
    if !session.capture {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "VALIDATION_FAILED",
            "replay capture is turned off (capture_max_steps = 0)",
        ));
    }
    Ok(axum::Json(export_capture(&session, recent).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiffRequest {
    baseline: CaptureExport,
    candidate: CaptureExport,
}

/// The contract's `ReplayDiffResult`: the step diff of two captures, carrying statuses,
/// generations, modes, warnings and item ids only.
pub fn diff_result(baseline: &CaptureExport, candidate: &CaptureExport) -> Value {
    let delta = diff(&baseline.records(), &candidate.records());
    json!({
        "schema_version": 1,
        "baseline_steps": baseline.steps.len(),
        "candidate_steps": candidate.steps.len(),
        "identical": delta.identical,
        "steps_compared": delta.steps_compared,
        "steps_changed": delta.steps_changed,
        "changes": delta.changes,
        "missing_in_candidate": delta.missing_in_candidate,
        "extra_in_candidate": delta.extra_in_candidate,
        "status_deltas": delta.status_deltas,
    })
}

/// `POST /v1/replay/diff`.
pub async fn replay_diff(
    State(runtime): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authenticate(&runtime, &headers, Plane::Admin)?;
    let request: DiffRequest = parse_body(&body)?;
    request.baseline.check()?;
    request.candidate.check()?;
    Ok(axum::Json(diff_result(&request.baseline, &request.candidate)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    #[serde(default)]
    interventions: Vec<Intervention>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CounterfactualRequest {
    capture: CaptureExport,
    scenario: Scenario,
}

/// `POST /v1/replay/counterfactual`: re-runs the capture against the planner as captured and
/// with the scenario's interventions, and reports the deltas. No store or live state is touched.
pub async fn replay_counterfactual(
    State(runtime): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authenticate(&runtime, &headers, Plane::Admin)?;
    let request: CounterfactualRequest = parse_body(&body)?;
    request.capture.check()?;
    check_count("scenario.interventions", request.scenario.interventions.len())?;
    let steps = request.capture.sim_steps()?;
    let primer = request.capture.replay_primer.clone().unwrap_or_default().to_sim();
    let baseline = simulate(&primer, &steps);
    let changed =
        intervene(steps, &request.scenario.interventions).map_err(ApiError::validation)?;
    let counterfactual = simulate(&primer, &changed);
    let delta = diff(&baseline, &counterfactual);
    let fidelity = diff(&request.capture.records(), &baseline);
    let count_status = |records: &[ReplayRecord], status: &str| {
        records.iter().filter(|record| record.status == status).count()
    };
    let mut status_counts = BTreeMap::new();
    for status in ["complete", "partial", "degraded", "stale_blocked"] {
        status_counts.insert(
            status,
            json!({
                "baseline": count_status(&baseline, status),
                "counterfactual": count_status(&counterfactual, status),
            }),
        );
    }
    let result = json!({
        "schema_version": 1,
        "interventions": request.scenario.interventions,
        "baseline": baseline,
        "counterfactual": counterfactual,
        "diff": delta,
        "status_counts": status_counts,
        "stale_blocked_delta": count_status(&counterfactual, "stale_blocked") as i64
            - count_status(&baseline, "stale_blocked") as i64,
        "baseline_matches_capture": fidelity.identical,
        "baseline_vs_capture": fidelity.changes,
    });
    Ok(axum::Json(result).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShadowRequest {
    schema_version: u32,
    replay_primer: ReplayPrimer,
    #[serde(default)]
    allow_connector_mutations: Option<bool>,
}

/// `POST /v1/replay/shadow-sessions`.
pub async fn shadow_session(
    State(runtime): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authenticate(&runtime, &headers, Plane::Admin)?;
    let request: ShadowRequest = parse_body(&body)?;
    if request.schema_version != 1 {
        return Err(ApiError::validation("schema_version must be 1"));
    }
    let primer = request.replay_primer.to_state()?;
    let (session_id, expires_at_ms) = runtime
        .create_shadow_session(&primer, request.allow_connector_mutations.unwrap_or(false))
        .await?;
    Ok(axum::Json(json!({
        "schema_version": 1,
        "session_id": session_id,
        "expires_at": rfc3339_ms(expires_at_ms),
    }))
    .into_response())
}

/// Sends every step of `capture` through `session` as its route would, in order. A step the
/// runtime refuses is left out of the session's capture, so the diff reports it missing.
///
/// # Errors
///
/// Never for a refused step; only when a step's request cannot be replayed at all.
pub async fn replay_into(
    runtime: &Runtime,
    session: &Session,
    capture: &CaptureExport,
) -> Result<Vec<(u64, ApiError)>, ApiError> {
    let mut refused = Vec::new();
    for (index, step) in capture.steps.iter().enumerate() {
        let Some(request) = &step.request else {
            return Err(ApiError::validation(format!("step {index} carries no request to replay")));
        };
        if let Err(err) = replay_step(runtime, session, request).await {
            refused.push((index as u64, err));
        }
    }
    Ok(refused)
}

async fn replay_step(
    runtime: &Runtime,
    session: &Session,
    request: &CapturedRequest,
) -> Result<(), ApiError> {
    let bytes = serde_json::to_vec(&request.body).unwrap_or_default();
    match request.route.as_str() {
        "/v1/context/retrieve" => {
            runtime.retrieve(session, parse_body(&bytes)?, None).await?;
        }
        "/v1/events/change" => {
            let event: crate::api::ChangeEvent = parse_body(&bytes)?;
            let change = event.validate()?;
            runtime
                .change_event(session, change, event.source_event_id.clone(), &request.body)
                .await?;
        }
        "/v1/context/invalidate" => {
            let invalidation: crate::api::InvalidationRequest = parse_body(&bytes)?;
            let target = invalidation.target.to_target()?;
            runtime
                .invalidate(
                    session,
                    target,
                    invalidation.tenant_id,
                    request.idempotency_key.clone(),
                    &request.body,
                )
                .await?;
        }
        "/v1/documents/upsert" => {
            let upsert: crate::api::UpsertDocumentRequest = parse_body(&bytes)?;
            let (scope, document) = upsert.validate()?;
            let id = document.id().clone();
            runtime.mutate(session, scope, Some(document), id, request.body.to_string()).await?;
        }
        "/v1/documents/delete" => {
            let delete: crate::api::DeleteDocumentRequest = parse_body(&bytes)?;
            let (scope, id) = delete.validate()?;
            runtime.mutate(session, scope, None, id, request.body.to_string()).await?;
        }
        other => return Err(ApiError::validation(format!("route {other} cannot be replayed"))),
    }
    Ok(())
}

/// `kyro replay`: re-runs an exported capture against the runtime a configuration describes,
/// in a shadow session of its own (its stores are certified first, as `kyro serve` does), and
/// diffs what that runtime answered against what the capture observed.
/// Returns whether the two are identical, and the diff report.
///
/// # Errors
///
/// The configuration or capture is invalid, or the runtime cannot start.
pub async fn replay_command(
    config: &std::path::Path,
    capture: &std::path::Path,
    allow_mutations: bool,
) -> anyhow::Result<(bool, Value)> {
    use anyhow::Context as _;
    let text = std::fs::read(capture)
        .with_context(|| format!("failed to read the capture {}", capture.display()))?;
    let capture: CaptureExport = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a replay capture export", capture.display()))?;
    capture.check().map_err(|err| anyhow::anyhow!("invalid capture: {}", err.message))?;
    let primer = capture
        .replay_primer
        .clone()
        .unwrap_or_default()
        .to_state()
        .map_err(|err| anyhow::anyhow!("invalid replay primer: {}", err.message))?;
    let runtime = crate::serve::build_runtime(config).await?;
    let (session_id, _) = runtime
        .create_shadow_session(&primer, allow_mutations)
        .await
        .map_err(|err| anyhow::anyhow!("cannot start a shadow session: {}", err.message))?;
    let session =
        runtime.session(Some(&session_id)).map_err(|err| anyhow::anyhow!("{}", err.message))?;
    let refused = replay_into(&runtime, &session, &capture)
        .await
        .map_err(|err| anyhow::anyhow!("{}", err.message))?;
    let replayed = export_capture(&session, MAX_RECENT.max(capture.steps.len()))
        .await
        .map_err(|err| anyhow::anyhow!("cannot read the replay's capture: {}", err.message))?;
    let mut report = diff_result(&capture, &replayed);
    report["refused_steps"] = json!(
        refused
            .iter()
            .map(|(step_index, err)| json!({
                "step_index": step_index,
                "code": err.code,
                "error": err.message,
            }))
            .collect::<Vec<_>>()
    );
    let identical = report["identical"].as_bool().unwrap_or(false) && refused.is_empty();
    Ok((identical, report))
}
