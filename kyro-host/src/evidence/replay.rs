//! Replay: the diff of two captures (`POST /v1/replay/diff`), counterfactual replay
//! (`POST /v1/replay/counterfactual`), shadow sessions (`POST /v1/replay/shadow-sessions`), and
//! re-running a capture through a runtime (`kyro replay`, the cutover gate).

use std::collections::BTreeMap;

use kyro_core::replay::{Intervention, ReplayRecord, StepStatus, diff, intervene, simulate};
use serde_json::{Value, json};

use super::capture::{check_export, primer_to_sim, primer_to_state, records, sim_steps};
use super::{MAX_RECENT, check_count};
use crate::runtime::Runtime;
use crate::runtime::error::{RuntimeError, RuntimeResult};
use crate::runtime::mutations::Mutation;
use crate::runtime::principal::Principal;
use crate::runtime::session::Session;
use crate::wire::change::{ChangeEvent, InvalidationRequest};
use crate::wire::replay::{
    CaptureExport, CapturedRequest, CounterfactualRequest, ReplayRecordDto, ShadowSessionCreated,
    ShadowSessionRequest,
};
use crate::wire::request::{DeleteDocumentRequest, RetrieveRequest, UpsertDocumentRequest};
use crate::wire::routes;

/// The step diff of two captures, carrying statuses, generations, modes, warnings and item ids
/// only.
pub(crate) fn diff_result(baseline: &CaptureExport, candidate: &CaptureExport) -> Value {
    let delta = diff(&records(baseline), &records(candidate));
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
///
/// # Errors
///
/// A capture of another schema version or with too many steps.
pub(crate) fn replay_diff(
    baseline: &CaptureExport,
    candidate: &CaptureExport,
) -> RuntimeResult<Value> {
    check_export(baseline)?;
    check_export(candidate)?;
    Ok(diff_result(baseline, candidate))
}

/// `POST /v1/replay/counterfactual`: re-runs the capture against the planner as captured and
/// with the scenario's interventions, and reports the deltas. No store or live state is touched.
///
/// # Errors
///
/// An invalid capture or scenario.
pub(crate) fn counterfactual(request: &CounterfactualRequest) -> RuntimeResult<Value> {
    check_export(&request.capture)?;
    check_count("scenario.interventions", request.scenario.interventions.len())?;
    let steps = sim_steps(&request.capture)?;
    let primer = primer_to_sim(&request.capture.replay_primer.clone().unwrap_or_default());
    let baseline = simulate(&primer, &steps);
    let interventions: Vec<Intervention> =
        request.scenario.interventions.iter().copied().map(Intervention::from).collect();
    let changed = intervene(steps, &interventions).map_err(RuntimeError::invalid)?;
    let counterfactual = simulate(&primer, &changed);
    let delta = diff(&baseline, &counterfactual);
    let fidelity = diff(&records(&request.capture), &baseline);
    let count_status = |records: &[ReplayRecord], status: StepStatus| {
        records.iter().filter(|record| record.status == status).count()
    };
    let mut status_counts = BTreeMap::new();
    for status in
        [StepStatus::Complete, StepStatus::Partial, StepStatus::Degraded, StepStatus::StaleBlocked]
    {
        status_counts.insert(
            status.as_str(),
            json!({
                "baseline": count_status(&baseline, status),
                "counterfactual": count_status(&counterfactual, status),
            }),
        );
    }
    let records_of =
        |records: &[ReplayRecord]| records.iter().map(ReplayRecordDto::from).collect::<Vec<_>>();
    Ok(json!({
        "schema_version": 1,
        "interventions": request.scenario.interventions,
        "baseline": records_of(&baseline),
        "counterfactual": records_of(&counterfactual),
        "diff": delta,
        "status_counts": status_counts,
        "stale_blocked_delta": count_status(&counterfactual, StepStatus::StaleBlocked) as i64
            - count_status(&baseline, StepStatus::StaleBlocked) as i64,
        "baseline_matches_capture": fidelity.identical,
        "baseline_vs_capture": fidelity.changes,
    }))
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
    let primer = primer_to_state(&request.replay_primer)?;
    let (session_id, expires_at_ms) = runtime
        .create_shadow_session(&primer, request.allow_connector_mutations.unwrap_or(false))
        .await?;
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
) -> RuntimeResult<Vec<(u64, RuntimeError)>> {
    let mut refused = Vec::new();
    for (index, step) in capture.steps.iter().enumerate() {
        let Some(request) = &step.request else {
            return Err(RuntimeError::invalid(format!(
                "step {index} carries no request to replay"
            )));
        };
        if let Err(err) = replay_step(runtime, session, request).await {
            refused.push((index as u64, err));
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
/// against what the capture observed. Returns whether the two are identical, and the report.
///
/// # Errors
///
/// An invalid capture or primer, or a shadow session that could not start.
pub(crate) async fn replay_capture(
    runtime: &Runtime,
    capture: &CaptureExport,
    allow_mutations: bool,
) -> RuntimeResult<(bool, Value)> {
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
    let mut report = diff_result(capture, &replayed);
    report["refused_steps"] = json!(
        refused
            .iter()
            .map(|(step_index, err)| json!({
                "step_index": step_index,
                "error": err.message,
            }))
            .collect::<Vec<_>>()
    );
    let identical = report["identical"].as_bool().unwrap_or(false) && refused.is_empty();
    Ok((identical, report))
}
