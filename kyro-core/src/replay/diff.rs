//! The step diff: how two runs of the same steps differ. Steps pair by key
//! ([`ReplayRecord::step_key`]); each pair is compared field by field, and the pairs where the
//! candidate did better (a reuse hit, a complete answer) or was diagnosed otherwise are counted.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use super::{ReplayRecord, StepStatus};

/// One step whose two runs answered differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepDiff {
    /// The step's key.
    pub step_key: String,
    /// Its record's position in the baseline run.
    pub baseline: usize,
    /// Its record's position in the candidate run.
    pub candidate: usize,
    /// What differs: `status`, `generation`, `deduplicated`, `ownership_mode`,
    /// `requested_freshness_mode`, `served_freshness_mode`, `cache_hit`, `diagnosis_kind`,
    /// `warnings`, `items`, `stale_pruned`, `diagnostic_codes`.
    pub changed_fields: Vec<&'static str>,
}

/// How two runs of the same steps differ.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayDiff {
    /// Steps present in both runs (once each).
    pub compared_steps: usize,
    /// Compared steps the candidate answered as a reuse hit where the baseline did not.
    pub cache_hit_gains: usize,
    /// Compared steps the candidate answered `complete` where the baseline did not.
    pub completion_gains: usize,
    /// Compared retrieves whose diagnosis kind differs (both runs carrying the facts).
    pub diagnosis_changes: usize,
    /// Keys of steps only the baseline ran, in its order.
    pub only_in_baseline: Vec<String>,
    /// Keys of steps only the candidate ran, in its order.
    pub only_in_candidate: Vec<String>,
    /// Records whose key an earlier record of the same run already has: left out of the
    /// comparison.
    pub duplicate_key_count: usize,
    /// The compared steps that differ, in the baseline's order.
    pub diffs: Vec<StepDiff>,
}

impl ReplayDiff {
    /// Whether the runs answered alike on every step, and ran the same steps.
    pub fn is_identical(&self) -> bool {
        self.diffs.is_empty()
            && self.only_in_baseline.is_empty()
            && self.only_in_candidate.is_empty()
            && self.duplicate_key_count == 0
    }
}

/// The first record of each key, by key, and how many records repeated a key.
fn index(records: &[ReplayRecord]) -> (BTreeMap<String, usize>, usize) {
    let mut first = BTreeMap::new();
    let mut duplicates = 0;
    for (position, record) in records.iter().enumerate() {
        match first.entry(record.step_key()) {
            Entry::Vacant(entry) => {
                entry.insert(position);
            }
            Entry::Occupied(_) => duplicates += 1,
        }
    }
    (first, duplicates)
}

/// Compares two runs step by step.
pub fn diff(baseline: &[ReplayRecord], candidate: &[ReplayRecord]) -> ReplayDiff {
    let (baseline_keys, baseline_duplicates) = index(baseline);
    let (candidate_keys, candidate_duplicates) = index(candidate);
    let mut out = ReplayDiff {
        duplicate_key_count: baseline_duplicates + candidate_duplicates,
        ..ReplayDiff::default()
    };
    let mut paired = BTreeSet::new();
    for (position, before) in baseline.iter().enumerate() {
        let key = before.step_key();
        if baseline_keys.get(&key) != Some(&position) {
            continue;
        }
        let Some(&other) = candidate_keys.get(&key) else {
            out.only_in_baseline.push(key);
            continue;
        };
        paired.insert(key.clone());
        let after = &candidate[other];
        out.compared_steps += 1;
        out.cache_hit_gains += usize::from(
            before.observed.cache_hit != Some(true) && after.observed.cache_hit == Some(true),
        );
        out.completion_gains += usize::from(
            before.status != StepStatus::Complete && after.status == StepStatus::Complete,
        );
        if let (Some(was), Some(is)) = (before.diagnosis_kind(), after.diagnosis_kind()) {
            out.diagnosis_changes += usize::from(was != is);
        }
        let changed_fields = changed_fields(before, after);
        if !changed_fields.is_empty() {
            out.diffs.push(StepDiff {
                step_key: key,
                baseline: position,
                candidate: other,
                changed_fields,
            });
        }
    }
    for (position, record) in candidate.iter().enumerate() {
        let key = record.step_key();
        if candidate_keys.get(&key) == Some(&position) && !paired.contains(&key) {
            out.only_in_candidate.push(key);
        }
    }
    out
}

/// The names of the fields two runs of one step answered differently.
fn changed_fields(before: &ReplayRecord, after: &ReplayRecord) -> Vec<&'static str> {
    let (was, is) = (&before.observed, &after.observed);
    let checks = [
        ("status", before.status != after.status),
        ("generation", before.generation != after.generation),
        ("deduplicated", was.deduplicated != is.deduplicated),
        ("ownership_mode", was.ownership_mode != is.ownership_mode),
        ("requested_freshness_mode", was.requested_mode != is.requested_mode),
        ("served_freshness_mode", was.served_mode != is.served_mode),
        ("cache_hit", was.cache_hit != is.cache_hit),
        ("diagnosis_kind", before.diagnosis_kind() != after.diagnosis_kind()),
        ("warnings", was.warnings != is.warnings),
        ("items", was.items != is.items),
        ("stale_pruned", was.stale_pruned != is.stale_pruned),
        ("diagnostic_codes", was.diagnostic_codes != is.diagnostic_codes),
    ];
    checks.into_iter().filter(|(_, differs)| *differs).map(|(name, _)| name).collect()
}
