//! What the proof bundle and the root-cause report share: the capture they rest on and its
//! summary, which of its retrieves still have their trace, how complete the evidence is, what a
//! run's retrieves add up to, and feedback counts.

use std::collections::BTreeMap;

use kyro_core::diagnosis::FeedbackSignal;
use kyro_core::replay::{StepStatus, StepType};

use super::facts::{Loaded, TraceView};
use super::runs::Run;
use crate::runtime::error::RuntimeResult;
use crate::runtime::evidence::Evidence;
use crate::runtime::health::retention_text;
use crate::runtime::principal::Principal;
use crate::runtime::session::Session;
use crate::runtime::{Runtime, now_ms};
use crate::wire::capture::CaptureExport;
use crate::wire::evidence::{
    CaptureSummary, CaptureWindow, EvidenceQuality, ProofBundleSource, RunMetrics, SignalCount,
    StepStatusCount, StepTypeCount, TraceCoverage,
};
use kyro_state::FeedbackRow;

/// The capture a report rests on, and where it came from.
pub(crate) struct Baseline {
    pub(crate) source: ProofBundleSource,
    pub(crate) capture: CaptureExport,
    /// The live capture's bounds; `None` for a caller-supplied capture.
    pub(crate) window: Option<CaptureWindow>,
}

impl Baseline {
    /// The `recent` newest steps of the session's capture, as the caller may see them (a
    /// session that captures nothing gives an empty capture); from a shadow session, the
    /// source is `live_shadow_run`.
    ///
    /// # Errors
    ///
    /// Capture or ledger evidence is unhealthy or unreadable.
    pub(crate) async fn live(
        runtime: &Runtime,
        session: &Session,
        principal: &Principal,
        recent: usize,
    ) -> RuntimeResult<Self> {
        let capture = if session.capture {
            super::capture::export(session, principal, recent).await?
        } else {
            CaptureExport {
                schema_version: 4,
                generated_at: kyro_core::time::rfc3339_millis(now_ms()),
                total_steps: 0,
                steps: Vec::new(),
                replay_primer: None,
            }
        };
        // The stored count spans every tenant: deployment-level, so not for a restricted caller.
        let stored_steps = if principal.is_unrestricted() {
            session.state.evidence_counts().await.ok().map(|counts| counts.capture_steps)
        } else {
            None
        };
        let window = CaptureWindow {
            recent,
            stored_steps,
            cut_by_recent: stored_steps.map(|stored| stored > recent as u64),
            capture_max_steps: runtime.config.capture_max_steps,
            capture_retention: retention_text(runtime.config.capture_retention),
        };
        let source = if session.expires_at_ms.is_some() {
            ProofBundleSource::LiveShadowRun
        } else {
            ProofBundleSource::LiveCaptureExport
        };
        Ok(Self { source, capture, window: Some(window) })
    }

    /// A capture the caller supplied.
    pub(crate) fn supplied(capture: CaptureExport) -> Self {
        Self { source: ProofBundleSource::CallerSupplied, capture, window: None }
    }

    /// What the capture holds and the window it covers.
    pub(crate) fn summary(&self, session: &Session) -> CaptureSummary {
        let records: Vec<_> =
            self.capture.steps.iter().filter_map(|step| step.observed_record.as_ref()).collect();
        let mut by_type: BTreeMap<StepType, usize> = BTreeMap::new();
        let mut by_status: BTreeMap<StepStatus, usize> = BTreeMap::new();
        for record in &records {
            *by_type.entry(record.step_type).or_default() += 1;
            *by_status.entry(record.status).or_default() += 1;
        }
        let steps = &self.capture.steps;
        CaptureSummary {
            source: self.source,
            capture_enabled: (self.source != ProofBundleSource::CallerSupplied)
                .then_some(session.capture),
            total_steps: steps.len(),
            steps_by_type: by_type
                .into_iter()
                .map(|(step_type, count)| StepTypeCount { step_type, count })
                .collect(),
            steps_by_status: by_status
                .into_iter()
                .map(|(status, count)| StepStatusCount { status, count })
                .collect(),
            first_captured_at: steps.first().and_then(|step| step.captured_at.clone()),
            last_captured_at: steps.last().and_then(|step| step.captured_at.clone()),
            first_generation: steps
                .first()
                .and_then(|step| step.pre_step_replay_primer.as_ref())
                .map(|primer| primer.current_generation),
            last_generation: records.last().map(|record| record.generation),
            window: self.window.clone(),
        }
    }
}

/// The traces of a capture's retrieves that this runtime still holds, with their feedback.
pub(crate) struct TraceEvidence {
    pub(crate) traces: Vec<TraceView>,
    pub(crate) feedback: BTreeMap<String, Vec<FeedbackRow>>,
    pub(crate) coverage: TraceCoverage,
}

/// Finds the trace of every retrieve in `capture`: among the traces already loaded first, then
/// one by one in the session's state.
///
/// # Errors
///
/// Trace or feedback evidence is unreadable.
pub(crate) async fn trace_evidence(
    runtime: &Runtime,
    session: &Session,
    loaded: &Loaded,
    capture: &CaptureExport,
) -> RuntimeResult<TraceEvidence> {
    let loaded_by_id: BTreeMap<&str, &TraceView> =
        loaded.traces.iter().map(|trace| (trace.trace_id.as_str(), trace)).collect();
    let mut evidence = TraceEvidence {
        traces: Vec::new(),
        feedback: BTreeMap::new(),
        coverage: TraceCoverage { captured_retrieves: 0, traces_found: 0, traces_missing: 0 },
    };
    for record in capture.steps.iter().filter_map(|step| step.observed_record.as_ref()) {
        if record.step_type != StepType::Retrieve {
            continue;
        }
        evidence.coverage.captured_retrieves += 1;
        let Some(trace_id) = &record.trace_id else {
            evidence.coverage.traces_missing += 1;
            continue;
        };
        if let Some(trace) = loaded_by_id.get(trace_id.as_str()) {
            let rows = loaded.feedback.get(trace_id).cloned().unwrap_or_default();
            evidence.add(Some((*trace).clone()), rows);
            continue;
        }
        let row = session
            .state
            .get_trace(trace_id)
            .await
            .map_err(|err| session.read_failed(Evidence::Trace, &err))?;
        let Some(row) = row else {
            evidence.coverage.traces_missing += 1;
            continue;
        };
        let rows = session
            .state
            .feedback_for(trace_id)
            .await
            .map_err(|err| session.read_failed(Evidence::Feedback, &err))?;
        evidence.add(TraceView::new(runtime, row), rows);
    }
    Ok(evidence)
}

impl TraceEvidence {
    /// Adds a found trace (`None`: stored, but unreadable).
    fn add(&mut self, trace: Option<TraceView>, feedback: Vec<FeedbackRow>) {
        let Some(trace) = trace else {
            self.coverage.traces_missing += 1;
            return;
        };
        self.coverage.traces_found += 1;
        if !feedback.is_empty() {
            self.feedback.insert(trace.trace_id.clone(), feedback);
        }
        self.traces.push(trace);
    }
}

/// How complete the evidence behind a report is.
pub(crate) fn evidence_quality(
    runtime: &Runtime,
    session: &Session,
    coverage: TraceCoverage,
    unreadable_traces: usize,
) -> EvidenceQuality {
    let config = &runtime.config;
    EvidenceQuality {
        trace_coverage: coverage,
        unreadable_traces,
        evidence_failures: session.failures(),
        capture_enabled: session.capture,
        trace_retention: retention_text(config.trace_retention),
        feedback_retention: retention_text(config.feedback_retention),
        capture_retention: retention_text(config.capture_retention),
    }
}

/// What a run's retrieves add up to.
pub(crate) fn metrics(run: &Run) -> RunMetrics {
    let counts = run.counts();
    let per_retrieve =
        |value: f64| (counts.retrieve_steps > 0).then(|| value / counts.retrieve_steps as f64);
    RunMetrics {
        retrieve_steps: counts.retrieve_steps,
        reuse_hit_rate: per_retrieve(counts.cache_hit_count as f64),
        complete_count: counts.complete_count,
        partial_count: counts.partial_count,
        degraded_count: counts.degraded_count,
        stale_blocked_count: counts.stale_blocked_count,
        downgraded_count: counts.downgraded_count,
        stale_pruned_item_count: counts.stale_pruned_item_count,
        avg_latency_ms: per_retrieve(run.total_latency_ms),
    }
}

/// How many feedback entries there are, and how many of each signal (every signal listed).
pub(crate) fn signal_counts<'a>(
    rows: impl Iterator<Item = &'a FeedbackRow>,
) -> (usize, Vec<SignalCount>) {
    let mut counts: BTreeMap<FeedbackSignal, usize> =
        FeedbackSignal::NAMES.iter().map(|(signal, _)| (*signal, 0)).collect();
    let mut n_entries = 0;
    for row in rows {
        n_entries += 1;
        if let Some(signal) = FeedbackSignal::parse(&row.signal) {
            *counts.entry(signal).or_default() += 1;
        }
    }
    let counts = counts.into_iter().map(|(signal, count)| SignalCount { signal, count }).collect();
    (n_entries, counts)
}
