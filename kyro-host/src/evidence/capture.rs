//! The capture export (`GET /v1/replay/capture`) and the conversions between exported captures
//! and the planner's replay inputs.

use std::collections::{BTreeMap, BTreeSet};

use kyro_core::replay::{PrimerState, ReplayRecord, SimStep, StepPlan, StepStatus};

use super::{MAX_ENTRIES, check_count};
use crate::runtime::capture::CaptureBody;
use crate::runtime::error::{RuntimeError, RuntimeResult};
use crate::runtime::evidence::Evidence;
use crate::runtime::now_ms;
use crate::runtime::principal::Principal;
use crate::runtime::session::Session;
use crate::wire::capture::{
    CaptureExport, CaptureStep, CapturedRequest, ProcessedEventDto, ReplayPrimer, ReplayRecordDto,
    ScopeGenerationDto, StepPlanDto,
};
use crate::wire::change::parse_timestamp;
use kyro_state::{CaptureStatus, EventTenant, Primer, ProcessedEvent, ScopeGeneration};

/// Checks a primer's limits and consistency and converts it to the state store's primer.
///
/// # Errors
///
/// Too many entries, invalid identifiers or timestamps, or a generation above the current one.
pub(crate) fn primer_to_state(primer: &ReplayPrimer) -> RuntimeResult<Primer> {
    check_count("replay_primer.scope_generations", primer.scope_generations.len())?;
    check_count("replay_primer.processed_change_events", primer.processed_change_events.len())?;
    let above = |generation: u64| generation > primer.current_generation;
    let mut seen = BTreeSet::new();
    let mut scope_generations = Vec::with_capacity(primer.scope_generations.len());
    for entry in &primer.scope_generations {
        kyro_core::validate_identifier(
            "replay_primer.scope_generations[].scope",
            &entry.scope,
            kyro_core::limits::MAX_ID_BYTES,
        )?;
        if above(entry.generation) || !seen.insert(entry.scope.as_str()) {
            return Err(RuntimeError::invalid(format!(
                "scope {} is listed twice or above current_generation",
                entry.scope
            )));
        }
        scope_generations.push(ScopeGeneration {
            key: entry.scope.clone(),
            generation: entry.generation,
            acknowledged_at_ms: parse_timestamp(&entry.acknowledged_at)?,
            trigger: entry.invalidation.clone().unwrap_or_else(|| "replay_primer".to_owned()),
        });
    }
    let mut seen = BTreeSet::new();
    let mut processed_events = Vec::with_capacity(primer.processed_change_events.len());
    for event in &primer.processed_change_events {
        kyro_core::validate_identifier(
            "source_event_id",
            &event.source_event_id,
            kyro_core::limits::MAX_SCOPE_FIELD_BYTES,
        )?;
        if above(event.original_generation) || !seen.insert(event.source_event_id.as_str()) {
            return Err(RuntimeError::invalid(format!(
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
        current_generation: primer.current_generation,
        scope_generations,
        processed_events,
    })
}

/// The planner's view of a primer.
pub(crate) fn primer_to_sim(primer: &ReplayPrimer) -> PrimerState {
    PrimerState {
        current_generation: primer.current_generation,
        scope_generations: primer
            .scope_generations
            .iter()
            .map(|entry| (entry.scope.clone(), entry.generation))
            .collect(),
        processed_change_events: primer
            .processed_change_events
            .iter()
            .map(|event| event.source_event_id.clone())
            .collect(),
    }
}

/// Refuses a capture of another schema version, with too many steps, or whose `total_steps`
/// is not the number of its steps.
///
/// # Errors
///
/// As described.
pub(crate) fn check_export(capture: &CaptureExport) -> RuntimeResult<()> {
    if capture.schema_version != 4 {
        return Err(RuntimeError::invalid(format!(
            "capture schema_version {} is not supported; expected 4",
            capture.schema_version
        )));
    }
    check_count("steps", capture.steps.len())?;
    if capture.total_steps != capture.steps.len() {
        return Err(RuntimeError::invalid(format!(
            "capture total_steps is {}, but it holds {} steps",
            capture.total_steps,
            capture.steps.len()
        )));
    }
    Ok(())
}

/// The steps counterfactual replay re-runs.
///
/// # Errors
///
/// A step without its record or plan.
pub(crate) fn sim_steps(capture: &CaptureExport) -> RuntimeResult<Vec<SimStep>> {
    capture
        .steps
        .iter()
        .map(|step| match (&step.observed_record, &step.plan) {
            (Some(record), Some(plan)) => Ok(SimStep {
                step_index: record.step_index,
                label: record.label.clone(),
                step_type: record.step_type,
                plan: StepPlan::from(plan),
            }),
            _ => Err(RuntimeError::invalid(format!(
                "step {} has no observed_record or plan; counterfactual replay needs both",
                step.sequence
            ))),
        })
        .collect()
}

/// Exports the `recent` newest capture steps of a session, with the primer that precedes them;
/// the first step's primer is the export's. A tenant-restricted caller gets only its tenants'
/// steps.
///
/// # Errors
///
/// Capture or ledger evidence is unhealthy or unreadable.
pub(crate) async fn export(
    session: &Session,
    principal: &Principal,
    recent: usize,
) -> RuntimeResult<CaptureExport> {
    // The primer comes from the ledger: a ledger whose last write failed cannot vouch for it.
    session.require_healthy(&[Evidence::Capture, Evidence::PlannerState])?;
    let mut stored = session
        .state
        .recent_capture(recent)
        .await
        .map_err(|err| session.read_failed(Evidence::Capture, &err))?;
    stored.retain(|step| match &step.row.tenant_id {
        Some(tenant_id) => principal.may_act_for(tenant_id),
        None => principal.is_unrestricted(),
    });
    let mut steps = Vec::with_capacity(stored.len());
    let mut primer_scopes: BTreeMap<String, ScopeGenerationDto> = BTreeMap::new();
    let mut touched = BTreeSet::new();
    for (index, step) in stored.iter().enumerate() {
        let body = serde_json::from_str::<CaptureBody>(&step.row.body).map_err(|err| {
            session.read_failed(Evidence::Capture, &format!("stored capture step: {err}"))
        })?;
        let scopes: Vec<ScopeGenerationDto> = body
            .scopes_seen
            .iter()
            .map(|(scope, generation, acknowledged_at_ms)| ScopeGenerationDto {
                scope: scope.clone(),
                generation: *generation,
                acknowledged_at: kyro_core::time::rfc3339_millis(*acknowledged_at_ms),
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
        steps.push(exported_step(index, step, body, scopes)?);
    }
    let replay_primer = primer_before(session, stored.first(), primer_scopes).await?;
    if let Some(first) = steps.first_mut() {
        first.pre_step_replay_primer = Some(replay_primer.clone());
    }
    Ok(CaptureExport {
        schema_version: 4,
        generated_at: kyro_core::time::rfc3339_millis(now_ms()),
        total_steps: steps.len(),
        steps,
        replay_primer: Some(replay_primer),
    })
}

/// The planner state before the first exported step: the scope generations the steps saw
/// before any of them changed those scopes, and the change events processed by then.
async fn primer_before(
    session: &Session,
    first: Option<&kyro_state::CapturedStep>,
    primer_scopes: BTreeMap<String, ScopeGenerationDto>,
) -> RuntimeResult<ReplayPrimer> {
    let start_generation = match first {
        Some(step) => step.row.pre_generation,
        None => session
            .state
            .current_generation()
            .await
            .map_err(|err| session.read_failed(Evidence::PlannerState, &err))?,
    };
    let processed = session
        .state
        .processed_events_upto(start_generation, MAX_ENTRIES)
        .await
        .map_err(|err| session.read_failed(Evidence::PlannerState, &err))?;
    Ok(ReplayPrimer {
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
    })
}

/// A stored step's status in the contract's vocabulary, and whether the step was a deduplicated
/// change: the ledger records `replayed` for a change whose idempotency key was already
/// processed, which the contract calls `accepted` (it was, earlier).
fn stored_status(status: CaptureStatus) -> (StepStatus, bool) {
    match status {
        CaptureStatus::Packet(status) => (StepStatus::from(status), false),
        CaptureStatus::Replayed => (StepStatus::Accepted, true),
        CaptureStatus::Rejected => (StepStatus::Rejected, false),
        _ => (StepStatus::Accepted, false),
    }
}

fn exported_step(
    index: usize,
    step: &kyro_state::CapturedStep,
    body: CaptureBody,
    scopes: Vec<ScopeGenerationDto>,
) -> RuntimeResult<CaptureStep> {
    let step_type = serde_json::from_value(serde_json::Value::String(step.row.step_type.clone()))
        .map_err(|_| RuntimeError::evidence_unhealthy(Evidence::Capture))?;
    let (status, deduplicated) = stored_status(step.row.status);
    let mut observed = body.observed.clone().unwrap_or_default();
    observed.deduplicated |= deduplicated;
    let record = ReplayRecord {
        step_index: index as u64,
        label: body.label.clone(),
        step_type,
        status,
        generation: step.row.generation,
        observed,
    };
    Ok(CaptureStep {
        sequence: step.sequence,
        observed_record: Some(ReplayRecordDto::new(
            &record,
            body.trace_id.clone(),
            body.latency_ms,
        )),
        captured_at: Some(kyro_core::time::rfc3339_millis(step.row.captured_at_ms)),
        pre_step_replay_primer: Some(ReplayPrimer {
            current_generation: step.row.pre_generation,
            scope_generations: scopes,
            processed_change_events: Vec::new(),
        }),
        request: Some(CapturedRequest {
            route: body.route,
            body: serde_json::from_str(&step.row.request).unwrap_or(serde_json::Value::Null),
            idempotency_key: body.idempotency_key,
        }),
        plan: Some(StepPlanDto::from(&body.plan)),
    })
}
