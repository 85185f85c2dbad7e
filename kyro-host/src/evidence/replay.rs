//! Replay: the diff of two runs (`POST /v1/replay/diff`), counterfactual replay
//! (`POST /v1/replay/counterfactual`), shadow sessions (`POST /v1/replay/shadow-sessions`), and
//! re-running a capture through a runtime (`kyro replay`, the cutover gate).

use kyro_core::replay::{Intervention, intervene, scenario_key, simulate, transformed_steps};
use serde_json::Value;

use super::capture::{check_export, primer_to_sim, primer_to_state, sim_steps};
use super::runs::{Run, captured_latencies, diff_result, run_redactions};
use super::{MAX_RECENT, check_count};
use crate::runtime::error::{RuntimeError, RuntimeResult};
use crate::runtime::mutations::Mutation;
use crate::runtime::principal::Principal;
use crate::runtime::session::Session;
use crate::runtime::{Runtime, now_ms};
use crate::wire::capture::{CaptureExport, CapturedRequest};
use crate::wire::change::{ChangeEvent, InvalidationRequest};
use crate::wire::replay::{
    CounterfactualRequest, CounterfactualResult, DiffRequest, RefusedStep, ReplayDiffResult,
    ReplayGateReport, ShadowSessionCreated, ShadowSessionRequest,
};
use crate::wire::request::{DeleteDocumentRequest, RetrieveRequest, UpsertDocumentRequest};
use crate::wire::routes;

/// `POST /v1/replay/diff`: two runs of the same steps, compared step by step. A count a run
/// states that its records do not bear out is a validation warning, not a refusal.
///
/// # Errors
///
/// A run with too many records or an invalid `generated_at`.
pub(crate) fn replay_diff(request: &DiffRequest) -> RuntimeResult<ReplayDiffResult> {
    let (baseline, mut warnings) = Run::of_report("baseline", &request.baseline)?;
    let (candidate, candidate_warnings) = Run::of_report("candidate", &request.candidate)?;
    warnings.extend(candidate_warnings);
    Ok(diff_result(&baseline, &candidate, warnings.len()).0)
}

/// `POST /v1/replay/counterfactual`: re-runs the capture against the planner as captured (the
/// baseline) and with the scenario's interventions (the counterfactual), and compares the two.
/// No store or live state is touched. The simulator decides, it does not time: each simulated
/// step carries the latency its captured run recorded.
///
/// # Errors
///
/// An invalid capture or scenario.
pub(crate) fn counterfactual(
    request: &CounterfactualRequest,
) -> RuntimeResult<CounterfactualResult> {
    check_export(&request.capture)?;
    let scenario = &request.scenario;
    kyro_core::validate_identifier(
        "scenario.name",
        &scenario.name,
        kyro_core::limits::MAX_SCOPE_FIELD_BYTES,
    )?;
    if scenario.interventions.is_empty() {
        return Err(RuntimeError::invalid("scenario.interventions must hold at least one"));
    }
    check_count("scenario.interventions", scenario.interventions.len())?;
    let steps = sim_steps(&request.capture)?;
    let primer = primer_to_sim(&request.capture.replay_primer.clone().unwrap_or_default());
    let interventions: Vec<Intervention> =
        scenario.interventions.iter().copied().map(Intervention::from).collect();
    let changed = intervene(steps.clone(), &interventions).map_err(RuntimeError::invalid)?;
    let latencies = captured_latencies(&request.capture);
    let generated_at = kyro_core::time::rfc3339_millis(now_ms());
    let simulated = |steps: &[kyro_core::replay::SimStep]| {
        let records = simulate(&primer, steps);
        let total_latency_ms =
            records.iter().filter_map(|record| latencies.get(&record.step_index)).sum();
        Run { generated_at: generated_at.clone(), records, total_latency_ms }
    };
    let baseline = simulated(&steps);
    let counterfactual = simulated(&changed);
    let (before, after) = (baseline.counts(), counterfactual.counts());
    let delta = |after: usize, before: usize| after as i64 - before as i64;
    Ok(CounterfactualResult {
        generated_at: generated_at.clone(),
        scenario_key: scenario_key(&scenario.name, &interventions),
        intervention_count: interventions.len(),
        transformed_steps: transformed_steps(&interventions),
        baseline_run_summary: baseline.summary(),
        counterfactual_run_summary: counterfactual.summary(),
        replay_diff_summary: diff_result(&baseline, &counterfactual, 0).0,
        stale_block_delta: delta(after.stale_blocked_count, before.stale_blocked_count),
        degraded_delta: delta(after.degraded_count, before.degraded_count),
        completion_delta: delta(after.complete_count, before.complete_count),
        redactions: run_redactions(),
    })
}

/// `POST /v1/replay/shadow-sessions`.
///
/// # Errors
///
/// An invalid request, or a session that could not be created.
pub(crate) async fn shadow_session(
    runtime: &Runtime,
    principal: &Principal,
    request: ShadowSessionRequest,
) -> RuntimeResult<ShadowSessionCreated> {
    principal.require_unrestricted("create a shadow session, whose primer spans tenants")?;
    if request.schema_version != 1 {
        return Err(RuntimeError::invalid("schema_version must be 1"));
    }
    // The contract fixes this to false: a shadow session never writes to a store over HTTP.
    if request.allow_connector_mutations == Some(true) {
        return Err(RuntimeError::invalid(
            "allow_connector_mutations must be false: shadow sessions refuse connector mutations",
        ));
    }
    let primer = primer_to_state(&request.replay_primer)?;
    let (session_id, expires_at_ms) = runtime.create_shadow_session(&primer, false).await?;
    Ok(ShadowSessionCreated {
        schema_version: 1,
        session_id,
        expires_at: kyro_core::time::rfc3339_millis(expires_at_ms),
    })
}

/// Sends every step of `capture` through `session` as its route would, in order. A step the
/// runtime refuses is left out of the session's capture, so the diff reports it missing.
///
/// # Errors
///
/// Only when a step's request cannot be replayed at all.
pub(crate) async fn replay_into(
    runtime: &Runtime,
    session: &Session,
    capture: &CaptureExport,
) -> RuntimeResult<Vec<(usize, RuntimeError)>> {
    let mut refused = Vec::new();
    for (index, step) in capture.steps.iter().enumerate() {
        let Some(request) = &step.request else {
            return Err(RuntimeError::invalid(format!(
                "step {index} carries no request to replay"
            )));
        };
        if let Err(err) = replay_step(runtime, session, request).await {
            refused.push((index, err));
        }
    }
    Ok(refused)
}

fn parse<T: serde::de::DeserializeOwned>(body: &Value) -> RuntimeResult<T> {
    serde_json::from_value(body.clone())
        .map_err(|err| RuntimeError::invalid(format!("captured request body: {err}")))
}

async fn replay_step(
    runtime: &Runtime,
    session: &Session,
    request: &CapturedRequest,
) -> RuntimeResult<()> {
    let principal = Principal::unrestricted();
    match request.route.as_str() {
        routes::RETRIEVE => {
            let retrieve: RetrieveRequest = parse(&request.body)?;
            runtime.retrieve(session, &principal, retrieve, None).await?;
        }
        routes::CHANGE_EVENT => {
            let event: ChangeEvent = parse(&request.body)?;
            runtime.change_event(session, &principal, event.validate()?, &request.body).await?;
        }
        routes::INVALIDATE => {
            let invalidation: InvalidationRequest = parse(&request.body)?;
            let key = request.idempotency_key.clone();
            runtime
                .invalidate(session, &principal, invalidation.validate()?, key, &request.body)
                .await?;
        }
        routes::UPSERT => {
            let upsert: UpsertDocumentRequest = parse(&request.body)?;
            let (scope, document) = upsert.validate()?;
            let id = document.id().clone();
            let raw_body = request.body.to_string();
            let mutation = Mutation { scope, id, document: Some(document), raw_body };
            runtime.mutate(session, &principal, mutation).await?;
        }
        routes::DELETE => {
            let delete: DeleteDocumentRequest = parse(&request.body)?;
            let (scope, id) = delete.validate()?;
            let mutation =
                Mutation { scope, id, document: None, raw_body: request.body.to_string() };
            runtime.mutate(session, &principal, mutation).await?;
        }
        other => return Err(RuntimeError::invalid(format!("route {other} cannot be replayed"))),
    }
    Ok(())
}

/// Re-runs an exported capture in a new shadow session of `runtime` and diffs what it answered
/// against what the capture observed: the cutover gate's report.
///
/// # Errors
///
/// An invalid capture or primer, or a shadow session that could not start.
pub(crate) async fn replay_capture(
    runtime: &Runtime,
    capture: &CaptureExport,
    allow_mutations: bool,
) -> RuntimeResult<ReplayGateReport> {
    check_export(capture)?;
    let primer = primer_to_state(&capture.replay_primer.clone().unwrap_or_default())?;
    let (session_id, _) = runtime.create_shadow_session(&primer, allow_mutations).await?;
    let session = runtime.session(Some(&session_id))?;
    let refused = replay_into(runtime, &session, capture).await?;
    let replayed = super::capture::export(
        &session,
        &Principal::unrestricted(),
        MAX_RECENT.max(capture.steps.len()),
    )
    .await?;
    let baseline = Run::of_capture(capture);
    let mut candidate = Run::of_capture(&replayed);
    // The session captured only the steps it served, in order: give each the index of the
    // captured step it replayed, so a refused step leaves a gap rather than shifting the rest.
    let served = capture
        .steps
        .iter()
        .enumerate()
        .filter(|(index, _)| !refused.iter().any(|(refused_index, _)| refused_index == index))
        .filter_map(|(_, step)| step.observed_record.as_ref().map(|record| record.step_index));
    for (record, step_index) in candidate.records.iter_mut().zip(served) {
        record.step_index = step_index;
    }
    let (diff, identical) = diff_result(&baseline, &candidate, 0);
    let refused_steps: Vec<RefusedStep> = refused
        .into_iter()
        .map(|(index, err)| RefusedStep {
            step_key: capture.steps[index].observed_record.as_ref().map_or_else(
                || format!("sequence:{}", capture.steps[index].sequence),
                |record| record.to_core().step_key(),
            ),
            error: err.message,
        })
        .collect();
    Ok(ReplayGateReport { identical: identical && refused_steps.is_empty(), diff, refused_steps })
}
