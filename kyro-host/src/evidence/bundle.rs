//! The proof bundle (`POST /v1/proofs/bundle`, schema version 4): one shareable document that
//! proves what a capture's run did: its summary and metrics, the stale context it kept from
//! agents, how complete its evidence is, the feedback on it, redacted examples of its
//! incidents, their diagnoses and resolutions, and, given a candidate run, how that run differs.

use kyro_core::replay::{StepStatus, StepType};

use super::capture::check_export;
use super::facts::{Loaded, load_traces, signals_of};
use super::recent_param;
use super::redaction::Redactor;
use super::runs::{Run, diff_result};
use super::summary::{
    Baseline, TraceEvidence, evidence_quality, metrics, signal_counts, trace_evidence,
};
use crate::runtime::error::RuntimeResult;
use crate::runtime::principal::Principal;
use crate::runtime::session::Session;
use crate::runtime::{Runtime, now_ms};
use crate::wire::capture::{CaptureExport, StepPlanDto};
use crate::wire::evidence::{
    BundleRequest, DebugExample, IncidentExample, ProofBundle, ProofBundleSource, ResolutionExample,
};

/// The most examples of each kind a bundle carries.
const MAX_EXAMPLES: usize = 5;

/// `POST /v1/proofs/bundle`.
///
/// # Errors
///
/// An invalid request or supplied artifact, or unhealthy evidence.
pub(crate) async fn bundle(
    runtime: &Runtime,
    session: &Session,
    principal: &Principal,
    request: BundleRequest,
) -> RuntimeResult<ProofBundle> {
    let recent = recent_param(request.recent, 100)?;
    let loaded = load_traces(runtime, session, recent).await?;
    let baseline = match request.baseline_capture {
        Some(capture) => {
            check_export(&capture)?;
            Baseline::supplied(capture)
        }
        None => Baseline::live(runtime, session, principal, recent).await?,
    };
    let candidate = request
        .candidate_run
        .as_ref()
        .map(|report| Run::of_report("candidate_run", report))
        .transpose()?;
    let evidence = trace_evidence(runtime, session, &loaded, &baseline.capture).await?;
    let run = Run::of_capture(&baseline.capture);
    let mut redactor = Redactor::new(principal);
    let (incident_examples, debug_examples) = examples(&evidence, &mut redactor);
    let (n_feedback, feedback_signal_counts) = signal_counts(evidence.feedback.values().flatten());
    let mut warnings = warnings(session, &baseline, &evidence, &loaded, &redactor);
    let compared = candidate.as_ref().map(|(candidate, candidate_warnings)| {
        warnings.extend(candidate_warnings.iter().cloned());
        diff_result(&run, candidate, candidate_warnings.len()).0
    });
    let trust_summary = trust_summary(&run, &evidence, compared.as_ref());
    Ok(ProofBundle {
        schema_version: 4,
        generated_at: kyro_core::time::rfc3339_millis(now_ms()),
        baseline_capture_source: baseline.source,
        baseline_capture_summary: baseline.summary(session),
        baseline_run_summary: run.summary(),
        baseline_metrics: metrics(&run),
        candidate_run_source: candidate.as_ref().map(|_| ProofBundleSource::CallerSupplied),
        candidate_run_summary: candidate.as_ref().map(|(candidate, _)| candidate.summary()),
        candidate_metrics: candidate.as_ref().map(|(candidate, _)| metrics(candidate)),
        replay_diff_summary: compared,
        stale_prevented_count: run.counts().stale_prevented(),
        missing_trace_evidence_count: evidence.coverage.traces_missing,
        evidence_quality: evidence_quality(
            runtime,
            session,
            evidence.coverage,
            loaded.n_unreadable,
        ),
        feedback_entries_considered: n_feedback,
        feedback_signal_counts,
        incident_examples,
        debug_examples,
        resolution_examples: resolutions(&baseline.capture),
        evidence_warnings: warnings,
        trust_summary,
    })
}

/// The first incidents among the capture's traces, and their diagnoses.
fn examples(
    evidence: &TraceEvidence,
    redactor: &mut Redactor<'_>,
) -> (Vec<IncidentExample>, Vec<DebugExample>) {
    let mut incidents = Vec::new();
    let mut debugs = Vec::new();
    for trace in &evidence.traces {
        if incidents.len() >= MAX_EXAMPLES {
            break;
        }
        let signals = signals_of(&evidence.feedback, &trace.trace_id);
        let diagnosis = trace.diagnosis(&signals);
        if !diagnosis.kind.is_incident() {
            continue;
        }
        let trace_key = redactor.trace_key(&trace.tenant_id, &trace.trace_id);
        incidents.push(IncidentExample {
            trace_key: trace_key.clone(),
            kind: diagnosis.kind,
            status: trace.facts.status,
            requested_freshness_mode: trace.facts.freshness_mode,
            served_freshness_mode: trace.facts.served_freshness_mode,
            timestamp: kyro_core::time::rfc3339_millis(trace.created_at_ms),
            stale_pruned_count: trace.facts.n_stale_pruned,
            feedback_signals: signals,
        });
        debugs.push(DebugExample {
            trace_key,
            kind: diagnosis.kind,
            summary: diagnosis.summary,
            recommended_actions: diagnosis.recommended_actions,
            evidence: diagnosis.evidence,
        });
    }
    (incidents, debugs)
}

/// The scope a captured retrieve was served in.
fn retrieve_scope(plan: Option<&StepPlanDto>) -> Option<(&str, &str)> {
    match plan? {
        StepPlanDto::Retrieve { tenant_id, namespace, .. } => Some((tenant_id, namespace)),
        StepPlanDto::Change { .. } => None,
    }
}

/// Captured retrieves that were blocked, pruned or degraded, each with the last change captured
/// before the same scope was next served complete.
fn resolutions(capture: &CaptureExport) -> Vec<ResolutionExample> {
    let steps = &capture.steps;
    let mut examples = Vec::new();
    for (position, step) in steps.iter().enumerate() {
        let Some(record) = &step.observed_record else { continue };
        let incident = matches!(
            record.status,
            StepStatus::StaleBlocked | StepStatus::Partial | StepStatus::Degraded
        );
        let Some(scope) = retrieve_scope(step.plan.as_ref()).filter(|_| incident) else {
            continue;
        };
        let mut change = None;
        for later in &steps[position + 1..] {
            let Some(later_record) = &later.observed_record else { continue };
            if later_record.step_type != StepType::Retrieve {
                if !later_record.deduplicated {
                    change = Some(later_record);
                }
                continue;
            }
            if retrieve_scope(later.plan.as_ref()) != Some(scope) {
                continue;
            }
            if later_record.status == StepStatus::Complete {
                if let Some(change) = change {
                    examples.push(ResolutionExample {
                        incident_step_key: record.to_core().step_key(),
                        incident_status: record.status,
                        change_step_key: change.to_core().step_key(),
                        change_generation: change.generation,
                        resolved_step_key: later_record.to_core().step_key(),
                        resolved_generation: later_record.generation,
                    });
                }
                break;
            }
        }
        if examples.len() >= MAX_EXAMPLES {
            break;
        }
    }
    examples
}

/// What a reader of the bundle should know about its evidence.
fn warnings(
    session: &Session,
    baseline: &Baseline,
    evidence: &TraceEvidence,
    loaded: &Loaded,
    redactor: &Redactor<'_>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    if baseline.source != ProofBundleSource::CallerSupplied && !session.capture {
        warnings.push(
            "replay capture is turned off (capture_max_steps = 0): the baseline holds no steps"
                .to_owned(),
        );
    } else if baseline.capture.steps.is_empty() {
        warnings.push("the baseline capture holds no steps".to_owned());
    }
    if evidence.coverage.traces_missing > 0 {
        warnings.push(format!(
            "{} of {} captured retrieves have no stored trace (past retention, or captured elsewhere)",
            evidence.coverage.traces_missing, evidence.coverage.captured_retrieves
        ));
    }
    if loaded.n_unreadable > 0 {
        warnings.push(format!("{} stored traces could not be read", loaded.n_unreadable));
    }
    let failures = session.failures();
    if !failures.is_empty() {
        warnings.push(format!("evidence whose last write failed: {}", failures.join(", ")));
    }
    warnings.extend(redactor.replaced_ids());
    warnings
}

/// The bundle in plain sentences.
fn trust_summary(
    run: &Run,
    evidence: &TraceEvidence,
    compared: Option<&crate::wire::replay::ReplayDiffResult>,
) -> Vec<String> {
    let counts = run.counts();
    let mut summary = vec![
        format!(
            "{} retrieves in {} captured steps: {} complete, {} partial, {} degraded, {} stale-blocked.",
            counts.retrieve_steps,
            counts.total_steps,
            counts.complete_count,
            counts.partial_count,
            counts.degraded_count,
            counts.stale_blocked_count
        ),
        format!(
            "Stale context kept from agents: {} (items pruned as stale: {}, strict retrieves blocked: {}).",
            counts.stale_prevented(),
            counts.stale_pruned_item_count,
            counts.stale_blocked_count
        ),
        format!(
            "Retrieves served from reuse: {} of {}; served in a weaker mode than asked: {}.",
            counts.cache_hit_count, counts.retrieve_steps, counts.downgraded_count
        ),
        match evidence.coverage.traces_missing {
            0 => "Every captured retrieve has its trace.".to_owned(),
            missing => format!("Captured retrieves without a trace to show: {missing}."),
        },
    ];
    if let Some(diff) = compared {
        summary.push(format!(
            "Against the candidate run: {} of {} compared steps changed; completion gains: {}, reuse gains: {}.",
            diff.changed_steps, diff.compared_steps, diff.completion_gains, diff.cache_hit_gains
        ));
    }
    summary
}
