//! The step diff: how two runs of the same steps differ, field by field.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{ReplayItem, ReplayRecord};

/// One field that differs between two runs of a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// The step.
    pub step_index: u64,
    /// Its label.
    pub label: String,
    /// The field: `status`, `generation`, `served_mode`, `ownership_mode`, `warnings`, `items`,
    /// `stale_pruned`, `step_type`.
    pub field: &'static str,
    /// The baseline's value, rendered.
    pub baseline: String,
    /// The candidate's value, rendered.
    pub candidate: String,
}

/// How two runs of the same steps differ.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplayDiff {
    /// Whether the runs answered alike on every step.
    pub identical: bool,
    /// Steps present in both runs.
    pub steps_compared: usize,
    /// Steps whose answers differ.
    pub steps_changed: usize,
    /// Every differing field.
    pub changes: Vec<FieldChange>,
    /// Steps only the baseline ran.
    pub missing_in_candidate: Vec<u64>,
    /// Steps only the candidate ran.
    pub extra_in_candidate: Vec<u64>,
    /// Status transitions counted over changed steps, as `baseline->candidate`.
    pub status_deltas: BTreeMap<String, usize>,
}

/// Compares two runs step by step (paired by `step_index`).
pub fn diff(baseline: &[ReplayRecord], candidate: &[ReplayRecord]) -> ReplayDiff {
    let candidates: BTreeMap<u64, &ReplayRecord> =
        candidate.iter().map(|record| (record.step_index, record)).collect();
    let baseline_indices: BTreeSet<u64> = baseline.iter().map(|record| record.step_index).collect();
    let mut out = ReplayDiff::default();
    for before in baseline {
        let Some(after) = candidates.get(&before.step_index) else {
            out.missing_in_candidate.push(before.step_index);
            continue;
        };
        out.steps_compared += 1;
        let n_before = out.changes.len();
        let mut field = |name: &'static str, left: String, right: String| {
            if left != right {
                out.changes.push(FieldChange {
                    step_index: before.step_index,
                    label: before.label.clone(),
                    field: name,
                    baseline: left,
                    candidate: right,
                });
            }
        };
        field(
            "step_type",
            before.step_type.as_str().to_owned(),
            after.step_type.as_str().to_owned(),
        );
        field("status", before.status.as_str().to_owned(), after.status.as_str().to_owned());
        field("generation", before.generation.to_string(), after.generation.to_string());
        field(
            "served_mode",
            render_option(before.observed.served_mode.map(|mode| mode.as_str())),
            render_option(after.observed.served_mode.map(|mode| mode.as_str())),
        );
        field(
            "ownership_mode",
            render_option(before.observed.ownership_mode.map(|mode| mode.as_str())),
            render_option(after.observed.ownership_mode.map(|mode| mode.as_str())),
        );
        field("warnings", before.observed.warnings.join("; "), after.observed.warnings.join("; "));
        field("items", render_items(&before.observed.items), render_items(&after.observed.items));
        field(
            "stale_pruned",
            before.observed.stale_pruned.join(", "),
            after.observed.stale_pruned.join(", "),
        );
        if out.changes.len() > n_before {
            out.steps_changed += 1;
            if before.status != after.status {
                *out.status_deltas
                    .entry(format!("{}->{}", before.status.as_str(), after.status.as_str()))
                    .or_default() += 1;
            }
        }
    }
    out.extra_in_candidate = candidate
        .iter()
        .map(|record| record.step_index)
        .filter(|index| !baseline_indices.contains(index))
        .collect();
    out.identical = out.changes.is_empty()
        && out.missing_in_candidate.is_empty()
        && out.extra_in_candidate.is_empty();
    out
}

fn render_option(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

fn render_items(items: &[ReplayItem]) -> String {
    items
        .iter()
        .map(|item| format!("{}({})", item.id, item.source.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}
