//! Runs as the contract shows them: a run of replay records (from a capture, a client's run
//! report or the simulator), its summary, and the diff of two runs. Pure conversions from
//! `kyro_core::replay`'s computations to the wire's documents.

use std::collections::BTreeMap;

use kyro_core::MutationOutcome;
use kyro_core::replay::{ReplayDiff, ReplayRecord, RunCounts, StepStatus, StepType, diff};

use super::check_count;
use crate::runtime::error::{RuntimeError, RuntimeResult};
use crate::wire::capture::CaptureExport;
use crate::wire::change::parse_timestamp;
use crate::wire::replay::{
    RecordSummary, ReplayDiffResult, RunReport, RunSummary, StepDiffSummary,
};

/// What run summaries and diffs leave out, for people.
pub(crate) fn run_redactions() -> Vec<String> {
    vec![
        "steps are named by key: step labels (which name tenants and namespaces), item ids, \
         warning texts and request bodies are not included"
            .to_owned(),
    ]
}

/// One run of steps.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Run {
    /// When the run was made (RFC 3339).
    pub(crate) generated_at: String,
    pub(crate) records: Vec<ReplayRecord>,
    /// The sum of the steps' latencies, as far as they were measured.
    pub(crate) total_latency_ms: f64,
}

impl Run {
    /// The run a capture observed: its records, and the latency each retrieve's trace recorded
    /// (changes record none).
    pub(crate) fn of_capture(capture: &CaptureExport) -> Self {
        let mut records = Vec::with_capacity(capture.steps.len());
        let mut total_latency_ms = 0.0;
        for record in capture.steps.iter().filter_map(|step| step.observed_record.as_ref()) {
            total_latency_ms += record.latency_ms.unwrap_or(0.0);
            records.push(record.to_core());
        }
        Self { generated_at: capture.generated_at.clone(), records, total_latency_ms }
    }

    /// A client's run report, checked; with a warning for each count it states that its records
    /// do not bear out.
    ///
    /// # Errors
    ///
    /// Too many records, or `generated_at` is not RFC 3339.
    pub(crate) fn of_report(field: &str, report: &RunReport) -> RuntimeResult<(Self, Vec<String>)> {
        check_count(&format!("{field}.records"), report.records.len())?;
        parse_timestamp(&report.generated_at)
            .map_err(|err| RuntimeError::invalid(format!("{field}.generated_at: {err}")))?;
        if !report.total_latency_ms.is_finite() || report.total_latency_ms < 0.0 {
            return Err(RuntimeError::invalid(format!(
                "{field}.total_latency_ms must be a finite number, at least 0"
            )));
        }
        let records: Vec<ReplayRecord> =
            report.records.iter().map(|record| record.to_core()).collect();
        let counts = RunCounts::of(&records);
        let mut warnings = Vec::new();
        for (name, stated, counted) in [
            ("total_steps", report.total_steps, counts.total_steps),
            ("retrieve_steps", report.retrieve_steps, counts.retrieve_steps),
            ("complete_count", report.complete_count, counts.complete_count),
            ("degraded_count", report.degraded_count, counts.degraded_count),
            ("stale_blocked_count", report.stale_blocked_count, counts.stale_blocked_count),
        ] {
            if stated != counted as u64 {
                warnings.push(format!("{field}.{name} is {stated}, its records count {counted}"));
            }
        }
        let run = Self {
            generated_at: report.generated_at.clone(),
            records,
            total_latency_ms: report.total_latency_ms,
        };
        Ok((run, warnings))
    }

    /// What the run counts.
    pub(crate) fn counts(&self) -> RunCounts {
        RunCounts::of(&self.records)
    }

    /// The contract's `PartnerReplayRunSummary` of the run.
    pub(crate) fn summary(&self) -> RunSummary {
        let counts = self.counts();
        RunSummary {
            generated_at: self.generated_at.clone(),
            total_steps: counts.total_steps,
            retrieve_steps: counts.retrieve_steps,
            complete_count: counts.complete_count,
            degraded_count: counts.degraded_count,
            stale_blocked_count: counts.stale_blocked_count,
            total_latency_ms: self.total_latency_ms,
            records: self.records.iter().map(record_summary).collect(),
            redactions: run_redactions(),
        }
    }
}

/// The latency each step of a capture recorded, by step index.
pub(crate) fn captured_latencies(capture: &CaptureExport) -> BTreeMap<u64, f64> {
    capture
        .steps
        .iter()
        .filter_map(|step| step.observed_record.as_ref())
        .filter_map(|record| Some((record.step_index, record.latency_ms?)))
        .collect()
}

/// The contract's `PartnerReplayRecordSummary` of one record.
pub(crate) fn record_summary(record: &ReplayRecord) -> RecordSummary {
    let observed = &record.observed;
    let mutation_outcome = match record.status {
        StepStatus::Inserted => Some(MutationOutcome::Inserted),
        StepStatus::Updated => Some(MutationOutcome::Updated),
        StepStatus::Deleted => Some(MutationOutcome::Deleted),
        StepStatus::NotFound => Some(MutationOutcome::NotFound),
        _ => None,
    };
    RecordSummary {
        step_key: record.step_key(),
        step_index: record.step_index,
        step_type: record.step_type,
        status: record.status,
        generation: record.generation,
        cache_hit: observed.cache_hit,
        requested_freshness_mode: observed.requested_mode,
        served_freshness_mode: observed.served_mode,
        diagnosis_kind: record.diagnosis_kind(),
        mutation_outcome,
        item_count: observed.items.len(),
        warning_count: observed.warnings.len(),
        // Every packet carries exactly one watermark, the runtime generation of its scope
        // (`runtime::packet`); changes answer none.
        watermark_count: usize::from(record.step_type == StepType::Retrieve),
        diagnostic_note_count: observed.diagnostic_codes.len(),
    }
}

/// The contract's `ReplayDiffResult` of two runs, and whether they are identical.
pub(crate) fn diff_result(
    baseline: &Run,
    candidate: &Run,
    validation_warning_count: usize,
) -> (ReplayDiffResult, bool) {
    let delta: ReplayDiff = diff(&baseline.records, &candidate.records);
    let diffs = delta
        .diffs
        .iter()
        .map(|step| {
            let before = &baseline.records[step.baseline];
            StepDiffSummary {
                step_key: step.step_key.clone(),
                step_index: before.step_index,
                step_type: before.step_type,
                changed_fields: step.changed_fields.clone(),
                baseline: record_summary(before),
                candidate: record_summary(&candidate.records[step.candidate]),
            }
        })
        .collect::<Vec<_>>();
    let result = ReplayDiffResult {
        compared_steps: delta.compared_steps,
        changed_steps: diffs.len(),
        cache_hit_gains: delta.cache_hit_gains,
        completion_gains: delta.completion_gains,
        diagnosis_changes: delta.diagnosis_changes,
        // To the microsecond, as latencies are measured.
        latency_delta_ms: ((candidate.total_latency_ms - baseline.total_latency_ms) * 1000.0)
            .round()
            / 1000.0,
        only_in_baseline_count: delta.only_in_baseline.len(),
        only_in_candidate_count: delta.only_in_candidate.len(),
        duplicate_key_count: delta.duplicate_key_count,
        validation_warning_count,
        diffs,
        redactions: run_redactions(),
    };
    (result, delta.is_identical())
}
