//! A settled retrieve becomes its trace, its capture step and its packet; the trace (with the
//! capture step, in one transaction) is durable before the packet is returned.

use std::sync::Arc;
use std::time::Instant;

use kyro_core::OwnershipMode;
use kyro_core::planner::{PacketStatus, Settlement, ShortAnswer};
use kyro_core::replay::{Candidate, Observed, StepPlan, StepType, warnings};
use sha2::{Digest, Sha256};

use super::capture::{RetrieveAnswer, ScopeSeen, StepRequest, retrieve_capture};
use super::error::{RuntimeError, RuntimeErrorKind, RuntimeResult};
use super::evidence::Evidence;
use super::fingerprint::RequestHashes;
use super::session::Session;
use super::{Runtime, now_ms};
use crate::stores::RegisteredStore;
use crate::wire::packet::{
    ContextItem, ContextOmission, ContextPacket, EvidenceDto, FreshnessProof, FreshnessScopeDto,
    PacketMeta, ProofDiagnostics, ProofStatus, ProvenanceDto, WatermarkDto, WatermarkSource,
};
use crate::wire::request::{RetrieveRequest, ValidRetrieve};
use crate::wire::routes;
use crate::wire::trace::{ContextTrace, DiagnosticNoteDto, StageDto, StalePrunedEntry, TraceScope};
use kyro_state::TraceRow;

/// Everything a retrieve gathered, for its trace, capture and packet.
pub(crate) struct Retrieved {
    pub(crate) request: RetrieveRequest,
    pub(crate) valid: ValidRetrieve,
    pub(crate) store: Arc<RegisteredStore>,
    pub(crate) hashes: RequestHashes,
    pub(crate) read_keys: Vec<String>,
    pub(crate) seen: Vec<ScopeSeen>,
    pub(crate) stages: Vec<StageDto>,
    pub(crate) started: Instant,
    /// The request body as the client sent it, when it came over HTTP.
    pub(crate) raw_body: Option<String>,
    /// The checked backend candidates, whether the answer was short, and the call's latency.
    pub(crate) fetched: Option<(Vec<Candidate>, Option<ShortAnswer>, Option<f64>)>,
}

/// A trace stage.
pub(crate) fn stage(
    name: &str,
    duration_ms: f64,
    hit: bool,
    items_produced: usize,
    detail: Option<String>,
) -> StageDto {
    StageDto { stage: name.to_owned(), duration_ms, hit, items_produced, detail }
}

/// Milliseconds since `started`, to the microsecond.
pub(crate) fn elapsed_ms(started: Instant) -> f64 {
    (started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}

impl Runtime {
    /// Persists the retrieve's trace and capture step, then returns its packet.
    pub(crate) async fn answer(
        &self,
        session: &Session,
        retrieved: Retrieved,
        settlement: Settlement,
    ) -> RuntimeResult<ContextPacket> {
        let now = now_ms();
        let total_latency_ms = elapsed_ms(retrieved.started);
        let ownership = retrieved.store.config.ownership;
        let packet = packet(&retrieved, &settlement, now, total_latency_ms);
        let persist_started = Instant::now();
        let trace = trace(&retrieved, &settlement, &packet, now, total_latency_ms);
        let body = serde_json::to_string(&trace).map_err(|err| {
            tracing::error!(error = %err, "trace encoding failed");
            RuntimeError::new(
                RuntimeErrorKind::PersistenceFailed(Evidence::Trace),
                "the retrieve's trace could not be encoded, so no packet is served",
            )
        })?;
        let capture = session.capture.then(|| {
            let answer = RetrieveAnswer {
                observed: Observed::of(&settlement, retrieved.valid.freshness_mode, ownership),
                trace_id: packet.trace_id.clone(),
                latency_ms: total_latency_ms,
            };
            capture_row(self.config.production, &retrieved, &settlement, answer, now)
        });
        let row = TraceRow {
            trace_id: packet.trace_id.clone(),
            tenant_id: retrieved.valid.scope.tenant_id().to_owned(),
            created_at_ms: now,
            body,
            capture,
        };
        if let Err(err) = session.traces.submit(row).await {
            session.mark(&[Evidence::Trace, Evidence::Capture], false);
            tracing::error!(error = %err, "trace persistence failed");
            return Err(RuntimeError::new(
                RuntimeErrorKind::PersistenceFailed(Evidence::Trace),
                "the retrieve's trace could not be persisted, so no packet is served",
            ));
        }
        session.mark(&[Evidence::Trace, Evidence::Capture], true);
        tracing::trace!(persist_ms = elapsed_ms(persist_started), "trace persisted");
        Ok(packet)
    }
}

fn packet(
    retrieved: &Retrieved,
    settlement: &Settlement,
    now: i64,
    total_latency_ms: f64,
) -> ContextPacket {
    let valid = &retrieved.valid;
    let store = &retrieved.store;
    let ownership = store.config.ownership;
    let n_invalidating =
        settlement.notes.iter().filter(|note| note.code.invalidates_proof()).count();
    let proof_status = proof_status(settlement.status, Some(ownership), n_invalidating);
    let mut codes: Vec<String> =
        settlement.notes.iter().map(|note| note.code.as_str().to_owned()).collect();
    codes.dedup();
    let items = items(retrieved, settlement);
    let omissions: Vec<ContextOmission> =
        settlement.omissions.iter().map(ContextOmission::from).collect();
    let guard_rejection_count = settlement
        .omissions
        .iter()
        .filter(|omission| omission.reason == kyro_core::planner::OmissionReason::VerifierRejected)
        .count();
    ContextPacket {
        packet_id: format!("pk_{}", uuid::Uuid::new_v4().simple()),
        trace_id: format!("tr_{}", uuid::Uuid::new_v4().simple()),
        status: settlement.status,
        freshness: FreshnessProof {
            requested_mode: valid.freshness_mode,
            served_mode: settlement.served_mode,
            ownership,
            generation: settlement.generation,
            safe_as_of: kyro_core::time::rfc3339_millis(now),
            watermarks: Some(vec![watermark(&valid.scope, settlement.generation, now)]),
        },
        meta: PacketMeta {
            latency_ms: total_latency_ms,
            execution_path: settlement.execution_path,
            cache_hit: settlement.execution_path
                == kyro_core::planner::ExecutionPath::ContextReuseHit,
            stale_pruned: settlement.stale_pruned.len(),
            partial: settlement.status == PacketStatus::Partial || settlement.short,
            scope_fingerprint: retrieved.hashes.fingerprint.to_string(),
            freshness_generation: settlement.generation,
            proof_diagnostics: ProofDiagnostics {
                proof_status,
                proof_invalidating_diagnostic_count: n_invalidating,
                guard_rejection_count,
                watermark_count: 1,
                source_native_watermark_count: 0,
                source_bridged_watermark_count: 0,
                runtime_generation_watermark_count: 1,
                diagnostic_codes: (!codes.is_empty()).then_some(codes),
            },
        },
        items,
        omissions,
        warnings: warnings(&settlement.notes),
    }
}

/// The standing of a packet's freshness proof, from its status, the serving store's ownership
/// (`None`: no longer configured, so nothing vouches for it) and how many of its notes
/// invalidate a proof. Reports recompute it from traces with this same rule.
pub(crate) fn proof_status(
    status: PacketStatus,
    ownership: Option<OwnershipMode>,
    n_invalidating: usize,
) -> ProofStatus {
    match status {
        PacketStatus::StaleBlocked => ProofStatus::Invalid,
        _ if ownership.is_none_or(|ownership| ownership == OwnershipMode::BestEffort) => {
            ProofStatus::Unavailable
        }
        _ if n_invalidating > 0 => ProofStatus::Invalid,
        _ => ProofStatus::RuntimeGeneration,
    }
}

fn items(retrieved: &Retrieved, settlement: &Settlement) -> Vec<ContextItem> {
    let valid = &retrieved.valid;
    let store = &retrieved.store;
    settlement
        .items
        .iter()
        .map(|(item, source)| ContextItem {
            id: item.id.to_string(),
            score: item.score.max(0.0),
            source: *source,
            provenance: ProvenanceDto {
                connector: store.config.id.clone(),
                namespace: valid.scope.namespace().to_owned(),
                doc_revision: item.revision.as_ref().map(|revision| revision.as_str().to_owned()),
                retrieved_at: Some(kyro_core::time::rfc3339_millis(item.retrieved_at_ms)),
                metadata: (!item.metadata.is_empty()).then(|| item.metadata.as_map().clone()),
            },
            content: if valid.include_content { item.content.clone() } else { None },
            evidence: item.content.as_ref().map(|content| EvidenceDto {
                content_sha256: Some(hex(&Sha256::digest(content.as_bytes()))),
                content_bytes: Some(content.len()),
            }),
        })
        .collect()
}

fn watermark(scope: &kyro_core::Scope, generation: u64, now: i64) -> WatermarkDto {
    WatermarkDto {
        scope: FreshnessScopeDto::from(scope),
        source: WatermarkSource::RuntimeGeneration,
        token: format!("g{generation}"),
        generation,
        observed_at: kyro_core::time::rfc3339_millis(now),
    }
}

fn trace(
    retrieved: &Retrieved,
    settlement: &Settlement,
    packet: &ContextPacket,
    now: i64,
    total_latency_ms: f64,
) -> ContextTrace {
    let valid = &retrieved.valid;
    let scope = FreshnessScopeDto::from(&valid.scope);
    ContextTrace {
        trace_id: packet.trace_id.clone(),
        timestamp: kyro_core::time::rfc3339_millis(now),
        scope: TraceScope {
            scope: retrieved.request.scope.clone(),
            metadata_filter_hash: retrieved.hashes.filter_hash,
            metadata_filter_fingerprint: retrieved.hashes.filter_fingerprint.clone(),
        },
        query_hash: retrieved.hashes.query_hash.clone(),
        top_k_requested: valid.top_k,
        freshness_mode: valid.freshness_mode,
        served_freshness_mode: settlement.served_mode,
        execution_path: settlement.execution_path,
        stages: retrieved.stages.clone(),
        freshness_generation: settlement.generation,
        items_returned: packet.items.len(),
        items_omitted: packet.omissions.len(),
        status: settlement.status,
        total_latency_ms,
        freshness_watermarks: packet.freshness.watermarks.clone(),
        stale_pruned: settlement
            .stale_pruned
            .iter()
            .map(|pruned| StalePrunedEntry {
                doc_id: pruned.doc_id.clone(),
                stale_at_generation: pruned.stale_at_generation,
                required_generation: pruned.stale_at_generation,
                reason: Some(pruned.reason.clone()),
            })
            .collect(),
        diagnostic_notes: settlement
            .notes
            .iter()
            .map(|note| DiagnosticNoteDto {
                code: note.code,
                severity: note.severity.into(),
                message: note.message.clone(),
                scope: Some(scope.clone()),
            })
            .collect(),
        degradation_reason: settlement.degradation_reason.clone(),
        connector_used: Some(retrieved.store.config.id.clone()),
        connector_latency_ms: retrieved.fetched.as_ref().and_then(|(_, _, latency)| *latency),
    }
}

fn capture_row(
    production: bool,
    retrieved: &Retrieved,
    settlement: &Settlement,
    answer: RetrieveAnswer,
    now: i64,
) -> kyro_state::CaptureRow {
    let valid = &retrieved.valid;
    let store = &retrieved.store;
    let (candidates, short) = retrieved
        .fetched
        .as_ref()
        .map(|(candidates, short, _)| (candidates.clone(), *short))
        .unwrap_or_default();
    let plan = StepPlan::Retrieve {
        fingerprint: retrieved.hashes.fingerprint.0,
        requested_mode: valid.freshness_mode,
        production,
        store_id: store.config.id.clone(),
        ownership: store.config.ownership,
        required_generation: valid.required_generation,
        read_keys: retrieved.read_keys.clone(),
        tenant_id: valid.scope.tenant_id().to_owned(),
        namespace: valid.scope.namespace().to_owned(),
        candidates,
        short,
    };
    let step = StepRequest {
        step_type: StepType::Retrieve,
        tenant_id: Some(valid.scope.tenant_id()),
        label: format!("retrieve {}/{}", valid.scope.tenant_id(), valid.scope.namespace()),
        route: routes::RETRIEVE,
        body: retrieved
            .raw_body
            .clone()
            .unwrap_or_else(|| serde_json::to_string(&retrieved.request).unwrap_or_default()),
        idempotency_key: None,
    };
    let status = kyro_state::CaptureStatus::from(settlement.status);
    retrieve_capture(step, plan, answer, &retrieved.seen, (settlement.generation, status), now)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}
